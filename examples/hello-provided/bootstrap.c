/*
 * hello-provided: a custom-runtime `bootstrap` for provided.al2023, in C with
 * plain sockets (the provided rootfs has no curl). It speaks the Lambda
 * Runtime API at $AWS_LAMBDA_RUNTIME_API (a numeric host:port; default
 * 127.0.0.1:9001) over one kept-alive HTTP/1.1 connection:
 *
 *   GET  /2018-06-01/runtime/invocation/next
 *   POST /2018-06-01/runtime/invocation/<id>/response   (or /error)
 *
 * and answers each event with a greeting built from the event's "name"
 * and an invocation counter that lives as long as the process (warm starts
 * keep it). An event with "fail": true gets a function error instead.
 *
 * Built static by build.sh, so it needs nothing from the rootfs.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define API "/2018-06-01/runtime"

struct buf {
    char *p;
    size_t len, cap;
};

static void buf_reserve(struct buf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        fprintf(stderr, "hello-provided: out of memory\n");
        exit(1);
    }
    b->p = p;
    b->cap = cap;
}

static void buf_add(struct buf *b, const char *s, size_t n)
{
    buf_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* ---- the connection ---------------------------------------------------- */

static struct sockaddr_in api_addr;
static int conn = -1;
static struct buf inbuf; /* bytes read but not yet consumed */

static void parse_address(void)
{
    const char *a = getenv("AWS_LAMBDA_RUNTIME_API");
    char host[256] = "127.0.0.1";
    int port = 9001;
    if (a && *a) {
        const char *colon = strrchr(a, ':');
        size_t hl = colon ? (size_t)(colon - a) : strlen(a);
        if (hl >= sizeof host)
            hl = sizeof host - 1;
        memcpy(host, a, hl);
        host[hl] = 0;
        if (colon)
            port = atoi(colon + 1);
    }
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    memset(&api_addr, 0, sizeof api_addr);
    api_addr.sin_family = AF_INET;
    api_addr.sin_port = htons((unsigned short)port);
    if (inet_pton(AF_INET, host, &api_addr.sin_addr) != 1) {
        fprintf(stderr, "hello-provided: AWS_LAMBDA_RUNTIME_API '%s' is not a numeric IPv4 host:port\n", a);
        exit(1);
    }
}

static void disconnect(void)
{
    if (conn >= 0)
        close(conn);
    conn = -1;
    inbuf.len = 0;
}

static int connect_api(void)
{
    conn = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (conn < 0)
        return -1;
    int one = 1;
    setsockopt(conn, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(conn, (struct sockaddr *)&api_addr, sizeof api_addr) < 0) {
        disconnect();
        return -1;
    }
    return 0;
}

static int write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(conn, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads more bytes into inbuf; 0 on EOF, -1 on error. */
static ssize_t fill(void)
{
    buf_reserve(&inbuf, 65536);
    for (;;) {
        ssize_t r = recv(conn, inbuf.p + inbuf.len, inbuf.cap - inbuf.len - 1, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r > 0) {
            inbuf.len += (size_t)r;
            inbuf.p[inbuf.len] = 0;
        }
        return r;
    }
}

static void consume(size_t n)
{
    memmove(inbuf.p, inbuf.p + n, inbuf.len - n);
    inbuf.len -= n;
    inbuf.p[inbuf.len] = 0;
}

/* Reads up to and including the next CRLF; returns its length without CRLF. */
static long read_line(struct buf *line)
{
    for (;;) {
        char *nl = inbuf.len ? memchr(inbuf.p, '\n', inbuf.len) : NULL;
        if (nl) {
            size_t n = (size_t)(nl - inbuf.p) + 1;
            line->len = 0;
            buf_add(line, inbuf.p, n);
            consume(n);
            while (line->len && (line->p[line->len - 1] == '\n' || line->p[line->len - 1] == '\r'))
                line->p[--line->len] = 0;
            return (long)line->len;
        }
        if (fill() <= 0)
            return -1;
    }
}

static int read_exact(struct buf *out, size_t n)
{
    while (inbuf.len < n)
        if (fill() <= 0)
            return -1;
    buf_add(out, inbuf.p, n);
    consume(n);
    return 0;
}

struct response {
    int status;
    struct buf body;
    char request_id[256];
};

static int read_response(struct response *r)
{
    struct buf line = {0};
    long content_length = -1;
    int chunked = 0, close_after = 0;
    r->status = 0;
    r->body.len = 0;
    r->request_id[0] = 0;
    if (read_line(&line) < 0 || sscanf(line.p, "HTTP/%*d.%*d %d", &r->status) != 1)
        goto fail;
    for (;;) {
        if (read_line(&line) < 0)
            goto fail;
        if (line.len == 0)
            break;
        char *colon = strchr(line.p, ':');
        if (!colon)
            continue;
        *colon = 0;
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        if (strcasecmp(line.p, "Content-Length") == 0)
            content_length = atol(v);
        else if (strcasecmp(line.p, "Transfer-Encoding") == 0 && strcasestr(v, "chunked"))
            chunked = 1;
        else if (strcasecmp(line.p, "Connection") == 0 && strcasestr(v, "close"))
            close_after = 1;
        else if (strcasecmp(line.p, "Lambda-Runtime-Aws-Request-Id") == 0)
            snprintf(r->request_id, sizeof r->request_id, "%s", v);
    }
    buf_reserve(&r->body, 0);
    r->body.p[0] = 0;
    if (chunked) {
        for (;;) {
            if (read_line(&line) < 0)
                goto fail;
            size_t n = strtoul(line.p, NULL, 16);
            if (n == 0) {
                while (read_line(&line) > 0) /* trailers */
                    ;
                break;
            }
            if (read_exact(&r->body, n) < 0 || read_line(&line) < 0)
                goto fail;
        }
    } else if (content_length >= 0) {
        if (read_exact(&r->body, (size_t)content_length) < 0)
            goto fail;
    } else {
        while (fill() > 0)
            ;
        buf_add(&r->body, inbuf.p, inbuf.len);
        close_after = 1;
    }
    if (close_after)
        disconnect();
    free(line.p);
    return 0;
fail:
    free(line.p);
    return -1;
}

/* One request; reconnects and retries once if the kept-alive connection died. */
static int request(const char *method, const char *path, const char *body, size_t body_len,
                   struct response *r)
{
    struct buf req = {0};
    buf_printf(&req, "%s %s%s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: hello-provided\r\n", method, API, path,
               inet_ntoa(api_addr.sin_addr), ntohs(api_addr.sin_port));
    if (body)
        buf_printf(&req, "Content-Type: application/json\r\nContent-Length: %zu\r\n", body_len);
    buf_add(&req, "\r\n", 2);
    if (body)
        buf_add(&req, body, body_len);
    for (int attempt = 0; attempt < 2; attempt++) {
        if (conn < 0 && connect_api() < 0)
            continue;
        if (write_all(req.p, req.len) == 0 && read_response(r) == 0) {
            free(req.p);
            return 0;
        }
        disconnect();
    }
    free(req.p);
    return -1;
}

/* ---- the function ------------------------------------------------------ */

/* The raw (still JSON-escaped) string value of "key" in a flat JSON object. */
static int json_string_field(const char *json, const char *key, char *out, size_t out_size)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    for (const char *p = strstr(json, pat); p; p = strstr(p + 1, pat)) {
        const char *q = p + strlen(pat);
        while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')
            q++;
        if (*q != ':')
            continue;
        q++;
        while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')
            q++;
        if (*q != '"')
            return 0;
        q++;
        size_t n = 0;
        while (*q && *q != '"' && n + 2 < out_size) {
            if (*q == '\\' && q[1])
                out[n++] = *q++;
            out[n++] = *q++;
        }
        if (*q != '"')
            return 0;
        out[n] = 0;
        return 1;
    }
    return 0;
}

static int json_true_field(const char *json, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    for (const char *p = strstr(json, pat); p; p = strstr(p + 1, pat)) {
        const char *q = p + strlen(pat);
        while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')
            q++;
        if (*q != ':')
            continue;
        q++;
        while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')
            q++;
        return strncmp(q, "true", 4) == 0;
    }
    return 0;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    parse_address();
    unsigned long invocations = 0;
    struct response r = {0};
    struct buf out = {0};
    char name[512];
    for (;;) {
        if (request("GET", "/invocation/next", NULL, 0, &r) < 0) {
            fprintf(stderr, "hello-provided: cannot reach the Runtime API: %s\n", strerror(errno));
            return 1;
        }
        if (r.status != 200 || !r.request_id[0]) {
            fprintf(stderr, "hello-provided: /next answered %d: %s\n", r.status, r.body.p);
            return 1;
        }
        invocations++;
        char rid[256];
        snprintf(rid, sizeof rid, "%s", r.request_id);
        printf("hello-provided: invocation %lu in this environment, request %s\n", invocations, rid);

        char path[512];
        out.len = 0;
        if (json_true_field(r.body.p, "fail")) {
            buf_printf(&out, "{\"errorMessage\":\"asked to fail\",\"errorType\":\"HelloError\",\"stackTrace\":[]}");
            snprintf(path, sizeof path, "/invocation/%s/error", rid);
        } else {
            if (!json_string_field(r.body.p, "name", name, sizeof name))
                strcpy(name, "world");
            buf_printf(&out,
                       "{\"message\":\"Hello, %s!\",\"invocations\":%lu,\"requestId\":\"%s\","
                       "\"runtime\":\"provided.al2023\"}",
                       name, invocations, rid);
            snprintf(path, sizeof path, "/invocation/%s/response", rid);
        }
        if (request("POST", path, out.p, out.len, &r) < 0) {
            fprintf(stderr, "hello-provided: cannot post the result: %s\n", strerror(errno));
            return 1;
        }
        if (r.status >= 500) {
            fprintf(stderr, "hello-provided: %s answered %d: %s\n", path, r.status, r.body.p);
            return 1;
        }
    }
}
