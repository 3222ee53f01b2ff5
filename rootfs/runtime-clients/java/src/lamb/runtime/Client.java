package lamb.runtime;

import com.amazonaws.services.lambda.runtime.ClientContext;
import com.amazonaws.services.lambda.runtime.CognitoIdentity;
import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.LambdaLogger;
import com.amazonaws.services.lambda.runtime.RequestHandler;
import com.amazonaws.services.lambda.runtime.RequestStreamHandler;
import com.amazonaws.services.lambda.runtime.logging.LogLevel;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.Type;
import java.net.HttpURLConnection;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * lamb's runtime client for the java runtimes.
 *
 * <p>Speaks Lambda's Runtime API (http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/...)
 * with the JDK only, and behaves as Lambda's Java runtime: the handler is
 * {@code package.Class::method} or {@code package.Class} (a RequestHandler or
 * RequestStreamHandler, whose handleRequest is called); user code is loaded
 * from /var/task, /var/task/lib/*.jar and /opt/java/lib/*.jar, and the class
 * is initialised (static initialisers, the instance) during init. A method
 * takes (InputStream, OutputStream[, Context]) for raw bytes, or (event[,
 * Context]) with the event JSON converted to its type (Map, List, String,
 * numbers, POJOs by setters or public fields); the result is written as JSON.
 * Errors are reported as {"errorMessage", "errorType": the exception's class,
 * "stackTrace": [frames]}; load failures go to /init/error and the process
 * exits.
 */
public final class Client {
    private static final String PREFIX = "/2018-06-01/runtime";

    private final String api;
    private final PrintStream log;

    private Client(String api, PrintStream log) {
        this.api = api;
        this.log = log;
    }

    public static void main(String[] args) throws Exception {
        PrintStream out = new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), true, "UTF-8");
        System.setOut(out);
        Client c = new Client(System.getenv("AWS_LAMBDA_RUNTIME_API"), out);
        Handler h;
        try {
            h = Handler.load(System.getenv("_HANDLER"), taskRoot());
        } catch (Throwable t) {
            Throwable e = unwrap(t);
            String body = errorBody(e);
            out.println(body);
            c.post("/init/error", body.getBytes(StandardCharsets.UTF_8), e.getClass().getName());
            System.exit(1);
            return;
        }
        while (true) {
            c.invokeOnce(h);
        }
    }

    private static String taskRoot() {
        String t = System.getenv("LAMBDA_TASK_ROOT");
        return t == null || t.isEmpty() ? "/var/task" : t;
    }

    private void invokeOnce(Handler h) throws IOException {
        HttpURLConnection next = open("/invocation/next");
        // /next is a long poll: no read timeout.
        next.setReadTimeout(0);
        if (next.getResponseCode() != 200) {
            throw new IOException("GET /next answered " + next.getResponseCode());
        }
        byte[] event;
        try (InputStream in = next.getInputStream()) {
            event = in.readAllBytes();
        }
        String id = next.getHeaderField("Lambda-Runtime-Aws-Request-Id");
        String trace = next.getHeaderField("Lambda-Runtime-Trace-Id");
        if (trace != null) {
            System.setProperty("com.amazonaws.xray.traceHeader", trace);
        } else {
            System.clearProperty("com.amazonaws.xray.traceHeader");
        }
        Ctx ctx = new Ctx(id, next, log);
        byte[] result;
        try {
            result = h.invoke(event, ctx);
        } catch (Throwable t) {
            Throwable e = unwrap(t);
            String body = errorBody(e);
            log.println(body);
            post("/invocation/" + id + "/error", body.getBytes(StandardCharsets.UTF_8), e.getClass().getName());
            return;
        }
        post("/invocation/" + id + "/response", result, null);
    }

    private HttpURLConnection open(String path) throws IOException {
        return (HttpURLConnection) new URL("http://" + api + PREFIX + path).openConnection();
    }

    private void post(String path, byte[] body, String errorType) throws IOException {
        HttpURLConnection c = open(path);
        c.setRequestMethod("POST");
        c.setDoOutput(true);
        c.setFixedLengthStreamingMode(body.length);
        c.setRequestProperty("Content-Type", "application/json");
        if (errorType != null) {
            c.setRequestProperty("Lambda-Runtime-Function-Error-Type", errorType);
        }
        try (OutputStream o = c.getOutputStream()) {
            o.write(body);
        }
        int code = c.getResponseCode();
        try (InputStream in = code >= 400 ? c.getErrorStream() : c.getInputStream()) {
            if (in != null) {
                in.readAllBytes();
            }
        }
        // A 5xx means the environment is broken: exit, as a container error.
        if (code >= 500) {
            System.exit(1);
        }
    }

    private static Throwable unwrap(Throwable t) {
        while ((t instanceof InvocationTargetException || t instanceof ExceptionInInitializerError)
                && t.getCause() != null) {
            t = t.getCause();
        }
        return t;
    }

    static String errorBody(Throwable e) {
        return Json.write(errorMap(e));
    }

    private static Map<String, Object> errorMap(Throwable e) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("errorMessage", e.getMessage() == null ? e.getClass().getName() : e.getMessage());
        m.put("errorType", e.getClass().getName());
        List<String> frames = new ArrayList<>();
        for (StackTraceElement f : e.getStackTrace()) {
            // The runtime's own frames are not the function's.
            if (!f.getClassName().startsWith("lamb.runtime.") && !f.getClassName().startsWith("jdk.internal.")
                    && !f.getClassName().startsWith("java.lang.reflect.")) {
                frames.add(f.toString());
            }
        }
        m.put("stackTrace", frames);
        if (e.getCause() != null && e.getCause() != e) {
            m.put("cause", errorMap(e.getCause()));
        }
        return m;
    }

    /** The function's handler, resolved and instantiated once, at init. */
    static final class Handler {
        private final Object target;
        private final Method method;
        private final boolean stream;
        private final boolean withContext;

        private Handler(Object target, Method method, boolean stream, boolean withContext) {
            this.target = target;
            this.method = method;
            this.stream = stream;
            this.withContext = withContext;
        }

        static Handler load(String handler, String taskRoot) throws Exception {
            if (handler == null || handler.isEmpty()) {
                throw new ClassNotFoundException("No handler: _HANDLER is empty");
            }
            int sep = handler.indexOf("::");
            String className = sep < 0 ? handler : handler.substring(0, sep);
            String methodName = sep < 0 ? "handleRequest" : handler.substring(sep + 2);
            ClassLoader loader = new URLClassLoader(classPath(taskRoot), Client.class.getClassLoader());
            Thread.currentThread().setContextClassLoader(loader);
            Class<?> cls;
            try {
                cls = Class.forName(className, true, loader);
            } catch (ClassNotFoundException e) {
                throw new ClassNotFoundException("Class not found: " + className, e);
            }
            Method m = pick(cls, methodName, sep < 0);
            if (m == null) {
                throw new NoSuchMethodException("No public method named " + methodName
                        + " with appropriate method signature found on class " + className);
            }
            Object target = Modifier.isStatic(m.getModifiers()) ? null : cls.getDeclaredConstructor().newInstance();
            Class<?>[] p = m.getParameterTypes();
            boolean stream = p.length >= 2 && p[0] == InputStream.class && p[1] == OutputStream.class;
            return new Handler(target, m, stream, p.length == (stream ? 3 : 2));
        }

        /** /var/task itself, then its lib/*.jar, then the layers' /opt/java/lib/*.jar. */
        private static URL[] classPath(String taskRoot) throws IOException {
            List<URL> urls = new ArrayList<>();
            urls.add(new File(taskRoot).toURI().toURL());
            for (String dir : new String[] {taskRoot + "/lib", "/opt/java/lib"}) {
                File[] jars = new File(dir).listFiles((d, n) -> n.endsWith(".jar"));
                if (jars != null) {
                    java.util.Arrays.sort(jars);
                    for (File j : jars) {
                        urls.add(j.toURI().toURL());
                    }
                }
            }
            return urls.toArray(new URL[0]);
        }

        /**
         * The public method to call: for a bare class, the RequestHandler or
         * RequestStreamHandler one; else the named method with the most
         * parameters a handler can take (bridge methods last).
         */
        private static Method pick(Class<?> cls, String name, boolean bare) {
            if (bare && !RequestHandler.class.isAssignableFrom(cls)
                    && !RequestStreamHandler.class.isAssignableFrom(cls)) {
                return null;
            }
            Method best = null;
            for (Method m : cls.getMethods()) {
                if (!m.getName().equals(name) || !fits(m)) {
                    continue;
                }
                if (best == null || (best.isBridge() && !m.isBridge())
                        || (best.isBridge() == m.isBridge() && m.getParameterCount() > best.getParameterCount())) {
                    best = m;
                }
            }
            return best;
        }

        private static boolean fits(Method m) {
            Class<?>[] p = m.getParameterTypes();
            if (p.length >= 2 && p[0] == InputStream.class && p[1] == OutputStream.class) {
                return p.length == 2 || p.length == 3 && p[2] == Context.class;
            }
            return p.length == 1 || p.length == 2 && p[1] == Context.class || p.length == 0;
        }

        byte[] invoke(byte[] event, Context ctx) throws Exception {
            if (stream) {
                ByteArrayOutputStream out = new ByteArrayOutputStream();
                InputStream in = new ByteArrayInputStream(event);
                Object[] args = withContext ? new Object[] {in, out, ctx} : new Object[] {in, out};
                method.invoke(target, args);
                return out.toByteArray();
            }
            Object[] args;
            if (method.getParameterCount() == 0) {
                args = new Object[0];
            } else {
                Type t = method.getGenericParameterTypes()[0];
                String text = new String(event, StandardCharsets.UTF_8);
                Object input = Json.convert(text.isBlank() ? null : Json.parse(text), t);
                args = withContext ? new Object[] {input, ctx} : new Object[] {input};
            }
            Object result = method.invoke(target, args);
            return Json.write(result).getBytes(StandardCharsets.UTF_8);
        }
    }

    /**
     * The context's LambdaLogger, as AWS's Java client: with
     * AWS_LAMBDA_LOG_FORMAT=JSON each message is one JSON record
     * {"timestamp", "level", "message", "AWSRequestId"}; a message logged at a
     * level below AWS_LAMBDA_LOG_LEVEL is dropped (one logged without a level
     * never is).
     */
    static final class Logger implements LambdaLogger {
        private static final boolean JSON = "JSON".equalsIgnoreCase(System.getenv("AWS_LAMBDA_LOG_FORMAT"));
        private static final LogLevel THRESHOLD = LogLevel.fromString(System.getenv("AWS_LAMBDA_LOG_LEVEL"));
        private static final DateTimeFormatter TIME =
                DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss.SSS'Z'").withZone(ZoneOffset.UTC);

        private final String requestId;
        private final PrintStream out;

        Logger(String requestId, PrintStream out) {
            this.requestId = requestId;
            this.out = out;
        }

        @Override
        public void log(String message) {
            log(message, LogLevel.UNDEFINED);
        }

        @Override
        public void log(byte[] message) {
            log(message, LogLevel.UNDEFINED);
        }

        @Override
        public void log(byte[] message, LogLevel level) {
            log(new String(message, StandardCharsets.UTF_8), level);
        }

        @Override
        public void log(String message, LogLevel level) {
            if (level != LogLevel.UNDEFINED && level.compareTo(THRESHOLD) < 0) {
                return;
            }
            if (JSON) {
                Map<String, Object> record = new LinkedHashMap<>();
                record.put("timestamp", TIME.format(Instant.now()));
                record.put("level", level.name());
                record.put("message", message);
                record.put("AWSRequestId", requestId);
                out.println(Json.write(record));
            } else {
                out.print(message);
            }
            out.flush();
        }
    }

    /** The Context of one invocation, from /next's headers and the environment. */
    static final class Ctx implements Context {
        private final String requestId;
        private final String arn;
        private final long deadlineMs;
        private final CognitoIdentity identity;
        private final ClientContext clientContext;
        private final LambdaLogger logger;

        Ctx(String requestId, HttpURLConnection next, PrintStream log) {
            this.requestId = requestId;
            this.arn = next.getHeaderField("Lambda-Runtime-Invoked-Function-Arn");
            long d;
            try {
                d = Long.parseLong(next.getHeaderField("Lambda-Runtime-Deadline-Ms"));
            } catch (NumberFormatException e) {
                d = 0;
            }
            this.deadlineMs = d;
            this.identity = identity(next.getHeaderField("Lambda-Runtime-Cognito-Identity"));
            this.clientContext = clientContext(next.getHeaderField("Lambda-Runtime-Client-Context"));
            this.logger = new Logger(requestId, log);
        }

        private static Map<?, ?> object(String json) {
            if (json == null || json.isEmpty()) {
                return null;
            }
            try {
                Object v = Json.parse(json);
                return v instanceof Map ? (Map<?, ?>) v : null;
            } catch (IllegalArgumentException e) {
                return null;
            }
        }

        private static String str(Map<?, ?> m, String k) {
            Object v = m == null ? null : m.get(k);
            return v == null ? null : v.toString();
        }

        private static Map<String, String> strings(Object v) {
            Map<String, String> out = new LinkedHashMap<>();
            if (v instanceof Map) {
                for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
                    out.put(String.valueOf(e.getKey()), e.getValue() instanceof String
                            ? (String) e.getValue() : Json.write(e.getValue()));
                }
            }
            return out;
        }

        private static CognitoIdentity identity(String json) {
            Map<?, ?> m = object(json);
            String id = str(m, "cognitoIdentityId");
            String pool = str(m, "cognitoIdentityPoolId");
            return new CognitoIdentity() {
                @Override
                public String getIdentityId() {
                    return id == null ? "" : id;
                }

                @Override
                public String getIdentityPoolId() {
                    return pool == null ? "" : pool;
                }
            };
        }

        private static ClientContext clientContext(String json) {
            Map<?, ?> m = object(json);
            if (m == null) {
                return null;
            }
            Map<?, ?> c = m.get("client") instanceof Map ? (Map<?, ?>) m.get("client") : null;
            com.amazonaws.services.lambda.runtime.Client client = c == null ? null
                    : new com.amazonaws.services.lambda.runtime.Client() {
                        @Override
                        public String getInstallationId() {
                            return str(c, "installation_id");
                        }

                        @Override
                        public String getAppTitle() {
                            return str(c, "app_title");
                        }

                        @Override
                        public String getAppVersionName() {
                            return str(c, "app_version_name");
                        }

                        @Override
                        public String getAppVersionCode() {
                            return str(c, "app_version_code");
                        }

                        @Override
                        public String getAppPackageName() {
                            return str(c, "app_package_name");
                        }
                    };
            Map<String, String> custom = strings(m.get("custom"));
            Map<String, String> env = strings(m.get("env"));
            return new ClientContext() {
                @Override
                public com.amazonaws.services.lambda.runtime.Client getClient() {
                    return client;
                }

                @Override
                public Map<String, String> getCustom() {
                    return custom;
                }

                @Override
                public Map<String, String> getEnvironment() {
                    return env;
                }
            };
        }

        @Override
        public String getAwsRequestId() {
            return requestId;
        }

        @Override
        public String getLogGroupName() {
            return System.getenv("AWS_LAMBDA_LOG_GROUP_NAME");
        }

        @Override
        public String getLogStreamName() {
            return System.getenv("AWS_LAMBDA_LOG_STREAM_NAME");
        }

        @Override
        public String getFunctionName() {
            return System.getenv("AWS_LAMBDA_FUNCTION_NAME");
        }

        @Override
        public String getFunctionVersion() {
            return System.getenv("AWS_LAMBDA_FUNCTION_VERSION");
        }

        @Override
        public String getInvokedFunctionArn() {
            return arn;
        }

        @Override
        public CognitoIdentity getIdentity() {
            return identity;
        }

        @Override
        public ClientContext getClientContext() {
            return clientContext;
        }

        @Override
        public int getRemainingTimeInMillis() {
            return (int) Math.max(0, deadlineMs - System.currentTimeMillis());
        }

        @Override
        public int getMemoryLimitInMB() {
            try {
                return Integer.parseInt(System.getenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"));
            } catch (NumberFormatException e) {
                return 0;
            }
        }

        @Override
        public LambdaLogger getLogger() {
            return logger;
        }
    }
}
