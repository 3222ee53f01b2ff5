package lamb.runtime;

import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.ParameterizedType;
import java.lang.reflect.Type;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A small JSON codec (no Jackson: the runtime has only the JDK). Parses to
 * Map (insertion-ordered), List, String, Integer/Long/BigInteger or Double/
 * BigDecimal, Boolean and null; writes those, arrays, Collections, Maps and
 * POJOs (public fields and getters). {@link #convert} turns a parsed value
 * into a handler's parameter type, filling a POJO's setters and public
 * fields by name, as Lambda's Java runtime does for simple event classes.
 */
final class Json {
    private final String s;
    private int i;

    private Json(String s) {
        this.s = s;
    }

    static Object parse(String text) {
        Json p = new Json(text);
        p.ws();
        Object v = p.value();
        p.ws();
        if (p.i != p.s.length()) {
            throw p.error("trailing characters");
        }
        return v;
    }

    private IllegalArgumentException error(String what) {
        return new IllegalArgumentException("Invalid JSON at offset " + i + ": " + what);
    }

    private void ws() {
        while (i < s.length() && " \t\r\n".indexOf(s.charAt(i)) >= 0) {
            i++;
        }
    }

    private void expect(char c) {
        if (i >= s.length() || s.charAt(i) != c) {
            throw error("expected '" + c + "'");
        }
        i++;
    }

    private boolean take(String word) {
        if (s.startsWith(word, i)) {
            i += word.length();
            return true;
        }
        return false;
    }

    private Object value() {
        if (i >= s.length()) {
            throw error("unexpected end");
        }
        char c = s.charAt(i);
        switch (c) {
            case '{':
                return object();
            case '[':
                return array();
            case '"':
                return string();
            default:
                if (take("true")) {
                    return Boolean.TRUE;
                }
                if (take("false")) {
                    return Boolean.FALSE;
                }
                if (take("null")) {
                    return null;
                }
                return number();
        }
    }

    private Map<String, Object> object() {
        Map<String, Object> m = new LinkedHashMap<>();
        expect('{');
        ws();
        if (take("}")) {
            return m;
        }
        while (true) {
            ws();
            String k = string();
            ws();
            expect(':');
            ws();
            m.put(k, value());
            ws();
            if (take("}")) {
                return m;
            }
            expect(',');
        }
    }

    private List<Object> array() {
        List<Object> l = new ArrayList<>();
        expect('[');
        ws();
        if (take("]")) {
            return l;
        }
        while (true) {
            ws();
            l.add(value());
            ws();
            if (take("]")) {
                return l;
            }
            expect(',');
        }
    }

    private String string() {
        expect('"');
        StringBuilder b = new StringBuilder();
        while (true) {
            if (i >= s.length()) {
                throw error("unterminated string");
            }
            char c = s.charAt(i++);
            if (c == '"') {
                return b.toString();
            }
            if (c != '\\') {
                b.append(c);
                continue;
            }
            if (i >= s.length()) {
                throw error("unterminated escape");
            }
            char e = s.charAt(i++);
            switch (e) {
                case '"': b.append('"'); break;
                case '\\': b.append('\\'); break;
                case '/': b.append('/'); break;
                case 'b': b.append('\b'); break;
                case 'f': b.append('\f'); break;
                case 'n': b.append('\n'); break;
                case 'r': b.append('\r'); break;
                case 't': b.append('\t'); break;
                case 'u':
                    if (i + 4 > s.length()) {
                        throw error("short \\u escape");
                    }
                    b.append((char) Integer.parseInt(s.substring(i, i + 4), 16));
                    i += 4;
                    break;
                default:
                    throw error("bad escape");
            }
        }
    }

    private Object number() {
        int start = i;
        while (i < s.length() && "+-0123456789.eE".indexOf(s.charAt(i)) >= 0) {
            i++;
        }
        String n = s.substring(start, i);
        if (n.isEmpty()) {
            throw error("unexpected character");
        }
        try {
            if (n.indexOf('.') < 0 && n.indexOf('e') < 0 && n.indexOf('E') < 0) {
                BigInteger v = new BigInteger(n);
                if (v.bitLength() < 32) {
                    return v.intValue();
                }
                return v.bitLength() < 64 ? (Object) v.longValue() : v;
            }
            double d = Double.parseDouble(n);
            return Double.isInfinite(d) ? new BigDecimal(n) : (Object) d;
        } catch (NumberFormatException e) {
            throw error("bad number " + n);
        }
    }

    // ------------------------------------------------------------ writing

    static String write(Object v) {
        StringBuilder b = new StringBuilder();
        write(b, v);
        return b.toString();
    }

    private static void write(StringBuilder b, Object v) {
        if (v == null) {
            b.append("null");
        } else if (v instanceof String || v instanceof Character || v instanceof Enum) {
            quote(b, v.toString());
        } else if (v instanceof Boolean) {
            b.append(v);
        } else if (v instanceof Number) {
            number(b, (Number) v);
        } else if (v instanceof Map) {
            b.append('{');
            boolean first = true;
            for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
                if (!first) {
                    b.append(',');
                }
                first = false;
                quote(b, String.valueOf(e.getKey()));
                b.append(':');
                write(b, e.getValue());
            }
            b.append('}');
        } else if (v instanceof Collection || v.getClass().isArray()) {
            b.append('[');
            List<Object> items = new ArrayList<>();
            if (v instanceof Collection) {
                items.addAll((Collection<?>) v);
            } else {
                for (int k = 0; k < java.lang.reflect.Array.getLength(v); k++) {
                    items.add(java.lang.reflect.Array.get(v, k));
                }
            }
            for (int k = 0; k < items.size(); k++) {
                if (k > 0) {
                    b.append(',');
                }
                write(b, items.get(k));
            }
            b.append(']');
        } else {
            write(b, properties(v));
        }
    }

    private static void number(StringBuilder b, Number n) {
        if ((n instanceof Double || n instanceof Float) && (Double.isNaN(n.doubleValue())
                || Double.isInfinite(n.doubleValue()))) {
            throw new IllegalArgumentException("cannot serialize " + n + " as JSON");
        }
        if (n instanceof Double || n instanceof Float) {
            double d = n.doubleValue();
            if (d == Math.rint(d) && Math.abs(d) < 1e15) {
                b.append((long) d).append(".0");
                return;
            }
        }
        b.append(n);
    }

    private static void quote(StringBuilder b, String s) {
        b.append('"');
        for (int k = 0; k < s.length(); k++) {
            char c = s.charAt(k);
            switch (c) {
                case '"': b.append("\\\""); break;
                case '\\': b.append("\\\\"); break;
                case '\n': b.append("\\n"); break;
                case '\r': b.append("\\r"); break;
                case '\t': b.append("\\t"); break;
                default:
                    if (c < 0x20) {
                        b.append(String.format("\\u%04x", (int) c));
                    } else {
                        b.append(c);
                    }
            }
        }
        b.append('"');
    }

    /** A POJO's public fields and getters (getX/isX), by JavaBean name. */
    private static Map<String, Object> properties(Object o) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (Field f : o.getClass().getFields()) {
            if (!Modifier.isStatic(f.getModifiers())) {
                try {
                    m.put(f.getName(), f.get(o));
                } catch (IllegalAccessException e) {
                    // Not readable from here: left out.
                }
            }
        }
        for (Method g : o.getClass().getMethods()) {
            String name = beanName(g);
            if (name != null && !m.containsKey(name)) {
                try {
                    m.put(name, g.invoke(o));
                } catch (ReflectiveOperationException e) {
                    // A getter that throws is left out, as Jackson's default would fail; keep going.
                }
            }
        }
        return m;
    }

    private static String beanName(Method g) {
        if (g.getParameterCount() != 0 || Modifier.isStatic(g.getModifiers())
                || g.getDeclaringClass() == Object.class) {
            return null;
        }
        String n = g.getName();
        String rest;
        if (n.startsWith("get") && n.length() > 3) {
            rest = n.substring(3);
        } else if (n.startsWith("is") && n.length() > 2
                && (g.getReturnType() == boolean.class || g.getReturnType() == Boolean.class)) {
            rest = n.substring(2);
        } else {
            return null;
        }
        return Character.toLowerCase(rest.charAt(0)) + rest.substring(1);
    }

    // ---------------------------------------------------------- converting

    /** A parsed JSON value as an instance of {@code type}. */
    static Object convert(Object v, Type type) throws ReflectiveOperationException {
        Class<?> raw = rawClass(type);
        if (v == null) {
            return raw.isPrimitive() ? convert(0, type) : null;
        }
        if (raw == Object.class || raw.isInstance(v) && !(v instanceof Map && needsFields(raw))) {
            return v;
        }
        if (raw == String.class) {
            return v instanceof String ? v : write(v);
        }
        if (v instanceof Number) {
            Number n = (Number) v;
            if (raw == int.class || raw == Integer.class) {
                return n.intValue();
            }
            if (raw == long.class || raw == Long.class) {
                return n.longValue();
            }
            if (raw == double.class || raw == Double.class) {
                return n.doubleValue();
            }
            if (raw == float.class || raw == Float.class) {
                return n.floatValue();
            }
            if (raw == short.class || raw == Short.class) {
                return n.shortValue();
            }
            if (raw == BigDecimal.class) {
                return new BigDecimal(n.toString());
            }
        }
        if ((raw == boolean.class || raw == Boolean.class) && v instanceof Boolean) {
            return v;
        }
        if (List.class.isAssignableFrom(raw) && v instanceof List) {
            Type item = typeArg(type, 0);
            List<Object> out = new ArrayList<>();
            for (Object x : (List<?>) v) {
                out.add(convert(x, item));
            }
            return out;
        }
        if (Map.class.isAssignableFrom(raw) && v instanceof Map) {
            Type item = typeArg(type, 1);
            Map<String, Object> out = new LinkedHashMap<>();
            for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
                out.put(String.valueOf(e.getKey()), convert(e.getValue(), item));
            }
            return out;
        }
        if (v instanceof Map) {
            return pojo((Map<?, ?>) v, raw);
        }
        throw new IllegalArgumentException("cannot convert " + v.getClass().getSimpleName() + " to " + raw.getName());
    }

    private static boolean needsFields(Class<?> raw) {
        return !Map.class.isAssignableFrom(raw);
    }

    private static Object pojo(Map<?, ?> m, Class<?> raw) throws ReflectiveOperationException {
        Object o = raw.getDeclaredConstructor().newInstance();
        for (Map.Entry<?, ?> e : m.entrySet()) {
            String k = String.valueOf(e.getKey());
            Method setter = setter(raw, k);
            if (setter != null) {
                setter.invoke(o, convert(e.getValue(), setter.getGenericParameterTypes()[0]));
                continue;
            }
            try {
                Field f = raw.getField(k);
                if (!Modifier.isStatic(f.getModifiers())) {
                    f.set(o, convert(e.getValue(), f.getGenericType()));
                }
            } catch (NoSuchFieldException ignored) {
                // Unknown properties are ignored.
            }
        }
        return o;
    }

    private static Method setter(Class<?> raw, String property) {
        if (property.isEmpty()) {
            return null;
        }
        String name = "set" + Character.toUpperCase(property.charAt(0)) + property.substring(1);
        for (Method m : raw.getMethods()) {
            if (m.getName().equals(name) && m.getParameterCount() == 1) {
                return m;
            }
        }
        return null;
    }

    private static Class<?> rawClass(Type t) {
        if (t instanceof Class) {
            return (Class<?>) t;
        }
        if (t instanceof ParameterizedType) {
            return (Class<?>) ((ParameterizedType) t).getRawType();
        }
        return Object.class;
    }

    private static Type typeArg(Type t, int k) {
        if (t instanceof ParameterizedType) {
            Type[] args = ((ParameterizedType) t).getActualTypeArguments();
            if (k < args.length) {
                return args[k];
            }
        }
        return Object.class;
    }
}
