package com.amazonaws.services.lambda.runtime;

/** aws-lambda-java-core's CognitoIdentity: the caller's Cognito identity. */
public interface CognitoIdentity {
    String getIdentityId();

    String getIdentityPoolId();
}
