package com.amazonaws.services.lambda.runtime;

/**
 * The invocation context, with the methods of aws-lambda-java-core's
 * interface of the same name: functions compiled against AWS's jar run with
 * this one, which lamb's runtime provides as Lambda's does.
 */
public interface Context {
    String getAwsRequestId();

    String getLogGroupName();

    String getLogStreamName();

    String getFunctionName();

    String getFunctionVersion();

    String getInvokedFunctionArn();

    CognitoIdentity getIdentity();

    ClientContext getClientContext();

    int getRemainingTimeInMillis();

    int getMemoryLimitInMB();

    LambdaLogger getLogger();
}
