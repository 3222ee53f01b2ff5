package com.amazonaws.services.lambda.runtime;

/** aws-lambda-java-core's RequestHandler: a typed event in, a result out. */
public interface RequestHandler<I, O> {
    O handleRequest(I input, Context context);
}
