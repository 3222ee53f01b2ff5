package com.amazonaws.services.lambda.runtime.logging;

/**
 * aws-lambda-java-core's log levels, lowest first. UNDEFINED is the level of a
 * message logged without one: it is never filtered out.
 */
public enum LogLevel {
    UNDEFINED,
    TRACE,
    DEBUG,
    INFO,
    WARN,
    ERROR,
    FATAL;

    /** The level named by AWS_LAMBDA_LOG_LEVEL's value, UNDEFINED when none. */
    public static LogLevel fromString(String name) {
        if (name == null) {
            return UNDEFINED;
        }
        try {
            return LogLevel.valueOf(name.trim().toUpperCase());
        } catch (IllegalArgumentException e) {
            return UNDEFINED;
        }
    }
}
