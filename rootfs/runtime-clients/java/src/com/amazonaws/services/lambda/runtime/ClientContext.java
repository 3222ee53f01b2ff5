package com.amazonaws.services.lambda.runtime;

import java.util.Map;

/** aws-lambda-java-core's ClientContext: what a mobile client sent. */
public interface ClientContext {
    Client getClient();

    Map<String, String> getCustom();

    Map<String, String> getEnvironment();
}
