package com.amazonaws.services.lambda.runtime;

import com.amazonaws.services.lambda.runtime.logging.LogLevel;

/** aws-lambda-java-core's LambdaLogger: writes to the function's log. */
public interface LambdaLogger {
    void log(String message);

    void log(byte[] message);

    /** A message at a level: filtered by AWS_LAMBDA_LOG_LEVEL, and a JSON record's level. */
    default void log(String message, LogLevel level) {
        log(message);
    }

    default void log(byte[] message, LogLevel level) {
        log(message);
    }
}
