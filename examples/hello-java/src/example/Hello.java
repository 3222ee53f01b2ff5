package example;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * hello-java: lamb's Java hello world (runtime java21, handler
 * example.Hello::handleRequest, or just example.Hello).
 */
public class Hello implements RequestHandler<Map<String, Object>, Map<String, Object>> {
    // Instance state is created once per environment (the cold start) and
    // lives on across warm invocations.
    private int invocations = 0;

    @Override
    public Map<String, Object> handleRequest(Map<String, Object> event, Context context) {
        invocations += 1;
        Object name = event == null ? null : event.get("name");
        context.getLogger().log("invocation " + invocations + " in this environment\n");
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("message", "Hello, " + (name instanceof String ? name : "world") + "!");
        out.put("invocations", invocations);
        out.put("requestId", context.getAwsRequestId());
        String env = System.getenv("AWS_EXECUTION_ENV");
        out.put("runtime", env == null ? "" : env.replace("AWS_Lambda_", ""));
        return out;
    }
}
