package com.amazonaws.services.lambda.runtime;

/** aws-lambda-java-core's Client: the mobile app of a ClientContext. */
public interface Client {
    String getInstallationId();

    String getAppTitle();

    String getAppVersionName();

    String getAppVersionCode();

    String getAppPackageName();
}
