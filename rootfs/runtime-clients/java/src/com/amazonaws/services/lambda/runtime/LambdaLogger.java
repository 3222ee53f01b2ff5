package com.amazonaws.services.lambda.runtime;

/** aws-lambda-java-core's LambdaLogger: writes to the function's log. */
public interface LambdaLogger {
    void log(String message);

    void log(byte[] message);
}
