// lamb's runtime client for every nodejs*.x runtime.
//
// Speaks Lambda's Runtime API (http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/...)
// with Node's own `http` module and gives the handler what Lambda's own
// Node.js runtime gives it: CommonJS and ES module handlers (`file.func`,
// `dir/file.func`, `file.obj.func`), async and callback handlers, the context
// object (callbackWaitsForEmptyEventLoop, getRemainingTimeInMillis,
// done/succeed/fail), Lambda's error bodies and its console format
// `<ISO time>\t<request id>\t<LEVEL>\t<message>`, and response streaming
// (`awslambda.streamifyResponse`, `awslambda.HttpResponseStream.from`).
//
// Started by /var/runtime/bootstrap, the shell script next to this file.

import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import util from 'node:util';

const require = createRequire(import.meta.url);
// `http` through require, not `import`: an ES import of a built-in reads
// every export to build the module's namespace, and node:http's lazy
// getters (WebSocket and its events, from the bundled undici) load then,
// which costs Node 24 about 35 ms of CPU at every start (half of what the
// client costs to get ready: docs/prewarm.md).
const http = require('node:http');

// ------------------------------------------------------------- prewarm ---

// A pre-initialised sandbox (lamb's docs/prewarm.md): Node and the modules
// above are loaded; say so on descriptor `fd` and wait for the function's
// environment (`KEY=VALUE` entries ended by NUL, then end of file), which
// replaces this process's whole environment before anything below reads it.
// What the start itself added (the shell's PWD) stays, as it would have been
// added to the function's environment. The code is at /var/task by then,
// over the directory this process started in (/var/task): enter it again,
// by its path.
function awaitAssignment(fd) {
  // A full collection first (the bootstrap passes --expose-gc, as Lambda's
  // does): the young generation the start filled would otherwise be
  // scavenged during the function's own init, on its cold start's path
  // (about 1 ms of its p50).
  if (typeof globalThis.gc === 'function') globalThis.gc();
  fs.writeSync(fd, 'ready\n');
  const chunks = [];
  const buf = Buffer.alloc(65536);
  for (;;) {
    const n = fs.readSync(fd, buf, 0, buf.length, null);
    if (n === 0) break;
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  fs.closeSync(fd);
  const assigned = new Map();
  for (const entry of Buffer.concat(chunks).toString('utf8').split('\0')) {
    const eq = entry.indexOf('=');
    if (eq > 0) assigned.set(entry.slice(0, eq), entry.slice(eq + 1));
  }
  const added = Object.entries(process.env).filter(([k]) => !assigned.has(k) && k !== 'LAMB_PREWARM_FD');
  for (const key of Object.keys(process.env)) delete process.env[key];
  for (const [k, v] of [...assigned, ...added]) process.env[k] = v;
  process.chdir(process.cwd());
}

// What Node's first HTTP request costs beyond the request itself (loading
// and setting up its http client: milliseconds), paid while the sandbox
// waits: one POST to init's Runtime API on a path it answers 404, the
// socket closed (so no handle is left for the event loop) before the wait.
function warmHttp(address) {
  const { hostname, port } = parseAddress(address);
  return new Promise((resolve) => {
    const req = http.request(
      {
        hostname,
        port,
        method: 'POST',
        path: '/2018-06-01/runtime/prewarm',
        headers: { 'Content-Type': 'application/json', 'Content-Length': 2 },
        agent: new http.Agent({ keepAlive: false }),
      },
      (res) => res.resume(),
    );
    req.on('close', resolve);
    req.on('error', resolve);
    req.end('{}');
  });
}
if (process.env.LAMB_PREWARM_FD) {
  await warmHttp(runtimeApi());
  awaitAssignment(Number(process.env.LAMB_PREWARM_FD));
}

// ---------------------------------------------------------------- errors ---

class ImportModuleError extends Error {}
class HandlerNotFound extends Error {}
class MalformedHandlerName extends Error {}
class UserCodeSyntaxError extends Error {}
class NodeJsExit extends Error {
  constructor() {
    super('The handler\'s promise was still pending when the Node.js event loop ran empty');
  }
}
class UnhandledPromiseRejection extends Error {
  constructor(reason, promise) {
    super(reason);
    this.reason = reason;
    this.promise = promise;
  }
}
for (const cls of [
  ImportModuleError,
  HandlerNotFound,
  MalformedHandlerName,
  UserCodeSyntaxError,
  NodeJsExit,
  UnhandledPromiseRejection,
]) {
  cls.prototype.name = `Runtime.${cls.name}`;
}

function isErrorLike(obj) {
  return (
    obj &&
    typeof obj.name === 'string' &&
    typeof obj.message === 'string' &&
    typeof obj.stack === 'string' &&
    obj.name &&
    obj.message &&
    obj.stack
  );
}

function intoError(err) {
  return err instanceof Error ? err : new Error(err);
}

// The body of /error and /init/error, as Lambda's Node runtime builds it.
function toRapidResponse(error) {
  try {
    if (util.types.isNativeError(error) || isErrorLike(error)) {
      return {
        errorType: error.name,
        errorMessage: error.message,
        trace: error.stack.split('\n'),
      };
    }
    return {
      errorType: typeof error,
      errorMessage: String(error),
      trace: [],
    };
  } catch (_) {
    return {
      errorType: 'handled',
      errorMessage:
        'callback called with Error argument, but there was a problem while retrieving one or more of its message, name, and stack',
    };
  }
}

function withEnumerableProperties(value) {
  if (!(value instanceof Error)) {
    return value;
  }
  const ret = Object.assign(
    { errorType: value.name, errorMessage: value.message, code: value.code },
    value,
  );
  if (typeof value.stack === 'string') {
    ret.stack = value.stack.split('\n');
  }
  return ret;
}

// How an error appears in the log; it always starts with a tab.
function toFormatted(error) {
  try {
    return '\t' + JSON.stringify(error, (_k, v) => withEnumerableProperties(v));
  } catch (_) {
    return '\t' + JSON.stringify(toRapidResponse(error));
  }
}

// --------------------------------------------------------------- console ---

const REQUEST_ID = Symbol.for('aws.lambda.runtime.requestId');
const LEVELS = Object.freeze({
  TRACE: { name: 'TRACE', priority: 1 },
  DEBUG: { name: 'DEBUG', priority: 2 },
  INFO: { name: 'INFO', priority: 3 },
  WARN: { name: 'WARN', priority: 4 },
  ERROR: { name: 'ERROR', priority: 5 },
  FATAL: { name: 'FATAL', priority: 6 },
});
const jsonLogs = (process.env.AWS_LAMBDA_LOG_FORMAT || '').toUpperCase() === 'JSON';

function jsonErrorReplacer(_k, value) {
  if (value instanceof Error) {
    return Object.assign(
      {
        errorType: value?.constructor?.name ?? 'UnknownError',
        errorMessage: value.message,
        stackTrace: typeof value.stack === 'string' ? value.stack.split('\n') : value.stack,
      },
      value,
    );
  }
  return value;
}

function formatJson(level, time, requestId, params) {
  const out = { timestamp: time, level: level.name, requestId };
  if (params.length === 1) {
    out.message = params[0];
    try {
      return JSON.stringify(out, jsonErrorReplacer);
    } catch (_) {
      out.message = util.format(out.message);
      return JSON.stringify(out);
    }
  }
  out.message = util.format(...params);
  const err = params.find((p) => p instanceof Error);
  if (err) {
    out.errorType = err?.constructor?.name ?? 'UnknownError';
    out.errorMessage = err.message;
    out.stackTrace = typeof err.stack === 'string' ? err.stack.split('\n') : [];
  }
  return JSON.stringify(out);
}

// One record a line: newlines inside a message become CR, as on Lambda.
function writeLog(level, params) {
  const time = new Date().toISOString();
  const requestId = globalThis[REQUEST_ID];
  const line = jsonLogs
    ? formatJson(level, time, requestId, params)
    : `${time}\t${requestId}\t${level.name}\t${util.format(...params)}`;
  process.stdout.write(line.replace(/\n/g, '\r') + '\n');
}

function patchConsole() {
  const threshold = LEVELS[(process.env.AWS_LAMBDA_LOG_LEVEL || '').toUpperCase()] ?? LEVELS.TRACE;
  const make = (level) =>
    level.priority >= threshold.priority ? (...params) => writeLog(level, params) : () => {};
  console.trace = make(LEVELS.TRACE);
  console.debug = make(LEVELS.DEBUG);
  console.info = make(LEVELS.INFO);
  console.log = console.info;
  console.warn = make(LEVELS.WARN);
  console.error = make(LEVELS.ERROR);
  console.fatal = (...params) => writeLog(LEVELS.FATAL, params);
}

function logError(label, err) {
  if (jsonLogs) {
    console.error(intoError(err));
  } else {
    console.error(label, toFormatted(intoError(err)));
  }
}

// ------------------------------------------------------- runtime API client ---

function runtimeApi() {
  return process.env.AWS_LAMBDA_RUNTIME_API || '127.0.0.1:9001';
}

// 'host:port' (the host may be bracketed IPv6) to http.request's options.
function parseAddress(address) {
  const i = address.lastIndexOf(':');
  return {
    hostname: i > 0 ? address.slice(0, i).replace(/^\[|\]$/g, '') : address,
    port: i > 0 ? parseInt(address.slice(i + 1), 10) : 80,
  };
}

class RuntimeClient {
  constructor(address) {
    ({ hostname: this.hostname, port: this.port } = parseAddress(address));
    // A new connection per request, as Lambda's Node client does: an idle
    // kept-alive socket must not hold the event loop open, or
    // callbackWaitsForEmptyEventLoop would never see it empty.
    this.agent = new http.Agent({ keepAlive: false });
  }

  request(method, urlPath, body, headers) {
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          hostname: this.hostname,
          port: this.port,
          method,
          path: '/2018-06-01/runtime' + urlPath,
          headers: body === undefined ? headers : { ...headers, 'Content-Length': Buffer.byteLength(body) },
          agent: this.agent,
        },
        (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }),
          );
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  async post(urlPath, body, headers) {
    let res;
    try {
      res = await this.request('POST', urlPath, body, headers);
    } catch (err) {
      process.stderr.write(`lamb runtime: POST ${urlPath} failed: ${err}\n`);
      process.exit(1);
    }
    if (res.status >= 300) {
      process.stderr.write(`lamb runtime: POST ${urlPath} answered ${res.status}: ${res.body.slice(0, 1000)}\n`);
      if (res.status >= 500) {
        process.exit(1);
      }
    }
  }

  async nextInvocation() {
    const res = await this.request('GET', '/invocation/next', undefined, {});
    if (res.status !== 200) {
      throw new Error(`GET /invocation/next answered ${res.status}: ${res.body.slice(0, 1000)}`);
    }
    return res;
  }

  postResponse(result, id, done) {
    let body;
    try {
      body = JSON.stringify(result === undefined ? null : result);
    } catch (_) {
      const err = new Error('Unable to stringify response body');
      logError('Invoke Error', err);
      this.postError(err, id, done);
      return;
    }
    this.post(`/invocation/${encodeURIComponent(id)}/response`, body, {
      'Content-Type': 'application/json',
    }).then(done);
  }

  // A streamed response: an open chunked POST the handler writes to, each
  // chunk reaching the caller as it is written. A failure after the first
  // byte can only travel in the error trailers. Returns the stream and a
  // promise of the Runtime API's answer.
  responseStream(id, highWaterMark) {
    const req = http.request({
      hostname: this.hostname,
      port: this.port,
      method: 'POST',
      path: `/2018-06-01/runtime/invocation/${encodeURIComponent(id)}/response`,
      headers: {
        'Lambda-Runtime-Function-Response-Mode': 'streaming',
        'Transfer-Encoding': 'chunked',
        Trailer: 'Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body',
        'Content-Type': 'application/octet-stream',
      },
      agent: this.agent,
      highWaterMark,
    });
    const answered = new Promise((resolve) => {
      req.on('response', (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      });
      req.on('error', (err) => {
        process.stderr.write(`lamb runtime: streamed response failed: ${err}\n`);
        resolve(0);
      });
    });
    return [makeResponseStream(req), answered];
  }

  postError(err, id, done) {
    const response = toRapidResponse(err);
    this.post(`/invocation/${encodeURIComponent(id)}/error`, JSON.stringify(response), {
      'Content-Type': 'application/json',
      'Lambda-Runtime-Function-Error-Type': String(response.errorType),
    }).then(done);
  }

  postInitError(err, done) {
    const response = toRapidResponse(err);
    this.post('/init/error', JSON.stringify(response), {
      'Content-Type': 'application/json',
      'Lambda-Runtime-Function-Error-Type': String(response.errorType),
    }).then(done);
  }
}

// ------------------------------------------------------ response streaming ---

const STREAMING = Symbol.for('aws.lambda.runtime.handler.streaming');
const HIGH_WATER_MARK = Symbol.for('aws.lambda.runtime.handler.streaming.highWaterMark');
const PRELUDE = Symbol('lamb.prelude');
const HTTP_INTEGRATION = 'application/vnd.awslambda.http-integration-response';

// The request the handler writes to, with Lambda's additions: the content
// type until the first byte, the HTTP prelude (see HttpResponseStream)
// before it, and fail(err) for the error trailers.
function makeResponseStream(req) {
  const write = req.write.bind(req);
  const end = req.end.bind(req);
  let started = false;
  const start = () => {
    if (!started) {
      started = true;
      if (req[PRELUDE]) {
        write(req[PRELUDE]);
      }
    }
  };
  req.setContentType = (type) => {
    if (started) {
      throw new Error('Cannot set the content type after the first write');
    }
    req.setHeader('Content-Type', type);
  };
  req.write = (...args) => {
    start();
    return write(...args);
  };
  req.end = (...args) => {
    start();
    return end(...args);
  };
  req.fail = (err) => {
    const response = toRapidResponse(err);
    start();
    req.addTrailers({
      'Lambda-Runtime-Function-Error-Type': String(response.errorType),
      'Lambda-Runtime-Function-Error-Body': Buffer.from(JSON.stringify(response)).toString('base64'),
    });
    end();
  };
  return req;
}

// `application/vnd.awslambda.http-integration-response`: a JSON prelude
// (statusCode, headers, cookies) and 8 NUL bytes before the body, which a
// function URL turns into the HTTP response's head.
class HttpResponseStream {
  static from(stream, prelude) {
    stream.setContentType(HTTP_INTEGRATION);
    stream[PRELUDE] = Buffer.concat([Buffer.from(JSON.stringify(prelude)), Buffer.alloc(8)]);
    return stream;
  }
}

function streamifyResponse(handler, options) {
  handler[STREAMING] = 'response';
  if (options?.highWaterMark !== undefined) {
    handler[HIGH_WATER_MARK] = Number(options.highWaterMark);
  }
  return handler;
}

globalThis.awslambda = { streamifyResponse, HttpResponseStream };

// ---------------------------------------------------------- user function ---

const FUNCTION_EXPR = /^([^.]*)\.(.*)$/;

// './a/b/file.obj.fn' -> ['./a/b/', 'file.obj.fn']
function moduleRootAndHandler(fullHandler) {
  const handlerString = path.basename(fullHandler);
  return [fullHandler.substring(0, fullHandler.indexOf(handlerString)), handlerString];
}

function splitHandlerString(handler) {
  const match = handler.match(FUNCTION_EXPR);
  if (!match) {
    throw new MalformedHandlerName('Bad handler');
  }
  return [match[1], match[2]];
}

function resolveHandler(object, nestedProperty) {
  return nestedProperty.split('.').reduce((nested, key) => nested && nested[key], object);
}

function tryRequireFile(file) {
  return fs.existsSync(file) ? require(file) : undefined;
}

async function tryImport(file) {
  return fs.existsSync(file) ? await import(pathToFileURL(file).href) : undefined;
}

// Whether the nearest package.json above `folder` says "type": "module".
function packageTypeIsModule(folder) {
  for (;;) {
    if (folder.endsWith('/node_modules')) {
      return false;
    }
    const pj = path.join(folder, 'package.json');
    if (fs.existsSync(pj)) {
      try {
        return JSON.parse(fs.readFileSync(pj, 'utf8'))?.type === 'module';
      } catch (e) {
        console.warn(`${pj} cannot be read, it will be ignored for ES module detection purposes.`, e);
        return false;
      }
    }
    const parent = path.dirname(folder);
    if (parent === folder) {
      return false;
    }
    folder = parent;
  }
}

// Lambda's search: the file itself, then .js (CommonJS unless package.json
// says module), .mjs, .cjs; last, Node's own resolution from the task root
// (node_modules, NODE_PATH).
async function loadModule(appRoot, moduleRoot, module) {
  const lambdaPath = path.resolve(appRoot, moduleRoot, module);
  const extensionless = tryRequireFile(lambdaPath);
  if (extensionless) {
    return extensionless;
  }
  const isModule = packageTypeIsModule(path.dirname(lambdaPath));
  if (!isModule) {
    const loaded = tryRequireFile(lambdaPath + '.js');
    if (loaded) {
      return loaded;
    }
  }
  const loaded =
    (isModule && (await tryImport(lambdaPath + '.js'))) ||
    (await tryImport(lambdaPath + '.mjs')) ||
    tryRequireFile(lambdaPath + '.cjs');
  if (loaded) {
    return loaded;
  }
  return require(require.resolve(module, { paths: [appRoot, moduleRoot] }));
}

async function loadUserFunction(appRoot, fullHandler) {
  if (fullHandler.includes('..')) {
    throw new MalformedHandlerName(
      `'${fullHandler}' is not a valid handler name. Use absolute paths when specifying root directories in handler names.`,
    );
  }
  const [moduleRoot, moduleAndHandler] = moduleRootAndHandler(fullHandler);
  const [module, handlerPath] = splitHandlerString(moduleAndHandler);
  let app;
  try {
    app = await loadModule(appRoot, moduleRoot, module);
  } catch (e) {
    if (e instanceof SyntaxError) {
      throw new UserCodeSyntaxError(e);
    }
    if (e && e.code === 'MODULE_NOT_FOUND') {
      throw new ImportModuleError(e);
    }
    throw e;
  }
  const fn = resolveHandler(app, handlerPath);
  if (!fn) {
    throw new HandlerNotFound(`${fullHandler} is undefined or not exported`);
  }
  if (typeof fn !== 'function') {
    throw new HandlerNotFound(`${fullHandler} is not a function`);
  }
  return fn;
}

// ------------------------------------------------------------ invoke loop ---

// The one 'beforeExit' listener's current action (the event loop ran empty).
let beforeExitAction = () => {};
const onBeforeExit = () => beforeExitAction();
function setBeforeExit(fn) {
  beforeExitAction = fn;
}
function resetBeforeExit() {
  beforeExitAction = () => {};
}

const isPromise = (obj) => obj && typeof obj.then === 'function';

// The callback and the context's done/succeed/fail: only the first call
// counts. With callbackWaitsForEmptyEventLoop (the default) a callback's
// result is posted once the event loop is empty.
function buildCallbackContext(client, id, scheduleNext) {
  let completed = false;
  let waitForEmptyEventLoop = true;
  const postError = (err) => {
    logError('Invoke Error', err);
    client.postError(err, id, scheduleNext);
  };
  const complete = (result) => {
    if (completed) {
      console.error(
        'Invocation has already been reported as done. Cannot call complete more than once per invocation.',
      );
      return;
    }
    completed = true;
    client.postResponse(result, id, scheduleNext);
  };
  const callback = (err, result) => {
    resetBeforeExit();
    if (err !== undefined && err !== null) {
      postError(err);
    } else if (!waitForEmptyEventLoop) {
      complete(result);
    } else {
      setBeforeExit(() => setImmediate(() => complete(result)));
    }
  };
  const done = (err, result) => {
    resetBeforeExit();
    if (err !== undefined && err !== null) {
      postError(err);
    } else {
      complete(result);
    }
  };
  let finished = false;
  const once =
    (fn) =>
    (...args) => {
      if (!finished) {
        finished = true;
        fn(...args);
      }
    };
  const context = {
    get callbackWaitsForEmptyEventLoop() {
      return waitForEmptyEventLoop;
    },
    set callbackWaitsForEmptyEventLoop(value) {
      waitForEmptyEventLoop = value;
    },
    succeed: once((result) => done(null, result)),
    fail: once((err) => (err === undefined || err === null ? done('handled') : done(err, null))),
    done: once(done),
  };
  return [once(callback), context, () => (completed = true)];
}

function parseJsonHeader(value, name) {
  if (value === undefined) {
    return undefined;
  }
  try {
    return JSON.parse(value);
  } catch (err) {
    throw new Error(`Cannot parse ${name} as json: ${err.toString()}`);
  }
}

function attachEnvironmentData(context, headers) {
  const deadline = Number(headers['lambda-runtime-deadline-ms']);
  return Object.assign(context, {
    functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
    clientContext: parseJsonHeader(headers['lambda-runtime-client-context'], 'ClientContext'),
    identity: parseJsonHeader(headers['lambda-runtime-cognito-identity'], 'CognitoIdentity'),
    invokedFunctionArn: headers['lambda-runtime-invoked-function-arn'],
    awsRequestId: headers['lambda-runtime-aws-request-id'],
    tenantId: headers['lambda-runtime-aws-tenant-id'],
    getRemainingTimeInMillis: () => deadline - Date.now(),
  });
}

class Runtime {
  constructor(client, handler, errorCallbacks) {
    this.client = client;
    this.handler = handler;
    this.isAsync = handler.constructor && handler.constructor.name === 'AsyncFunction';
    this.errorCallbacks = errorCallbacks;
  }

  scheduleIteration() {
    setImmediate(() => {
      this.handleOnce().catch((err) => {
        console.log(`Unexpected Top Level Error: ${err.toString()}`);
        this.errorCallbacks.uncaughtException(err);
      });
    });
  }

  async handleOnce() {
    const { headers, body } = await this.client.nextInvocation();
    const id = headers['lambda-runtime-aws-request-id'];
    if (!id) {
      throw new Error('invocation id is missing or invalid');
    }
    globalThis[REQUEST_ID] = id;
    if (headers['lambda-runtime-trace-id']) {
      process.env._X_AMZN_TRACE_ID = headers['lambda-runtime-trace-id'];
    } else {
      delete process.env._X_AMZN_TRACE_ID;
    }
    const scheduleNext = () => this.scheduleIteration();
    if (this.handler[STREAMING] === 'response') {
      this.handleStreaming(id, headers, body, scheduleNext);
      return;
    }
    const [callback, context, markCompleted] = buildCallbackContext(this.client, id, scheduleNext);
    try {
      this.errorCallbacks.uncaughtException = (err) => this.client.postError(err, id, () => process.exit(129));
      this.errorCallbacks.unhandledRejection = (err) => this.client.postError(err, id, () => process.exit(128));
      // Neither a callback nor a settled promise by the time the loop is
      // empty: a sync handler answers null, an async one failed.
      setBeforeExit(() => {
        markCompleted();
        if (this.isAsync) {
          const err = new NodeJsExit();
          logError('Invoke Error', err);
          this.client.postError(err, id, scheduleNext);
        } else {
          this.client.postResponse(null, id, scheduleNext);
        }
      });
      const result = this.handler(JSON.parse(body), attachEnvironmentData(context, headers), callback);
      if (isPromise(result)) {
        result.then(context.succeed, context.fail).catch(context.fail);
      }
    } catch (err) {
      callback(err);
    }
  }

  // A streamifyResponse handler: (event, responseStream, context). Its
  // promise's failure (or a throw) ends the stream with the error trailers;
  // its success ends the stream if the handler left it open. The next event
  // is asked for once the Runtime API answered the stream.
  handleStreaming(id, headers, body, scheduleNext) {
    const [stream, answered] = this.client.responseStream(id, this.handler[HIGH_WATER_MARK]);
    const fail = (err) => {
      logError('Invoke Error', err);
      if (!stream.writableEnded) {
        stream.fail(err);
      }
    };
    this.errorCallbacks.uncaughtException = (err) => {
      fail(err);
      answered.then(() => process.exit(129));
    };
    this.errorCallbacks.unhandledRejection = (err) => {
      fail(err);
      answered.then(() => process.exit(128));
    };
    setBeforeExit(() => {});
    answered.then(scheduleNext);
    try {
      const context = attachEnvironmentData({ callbackWaitsForEmptyEventLoop: false }, headers);
      const result = this.handler(JSON.parse(body), stream, context);
      if (isPromise(result)) {
        result.then(() => {
          if (!stream.writableEnded) {
            stream.end();
          }
        }, fail);
      }
    } catch (err) {
      fail(err);
    }
  }
}

// ------------------------------------------------------------------- main ---

async function main() {
  patchConsole();
  const client = new RuntimeClient(runtimeApi());
  const errorCallbacks = {
    uncaughtException: (err) => client.postInitError(err, () => process.exit(129)),
    unhandledRejection: (err) => client.postInitError(err, () => process.exit(128)),
  };
  process.on('uncaughtException', (err) => {
    logError('Uncaught Exception', err);
    errorCallbacks.uncaughtException(err);
  });
  process.on('unhandledRejection', (reason, promise) => {
    const err = new UnhandledPromiseRejection(reason, promise);
    logError('Unhandled Promise Rejection', err);
    errorCallbacks.unhandledRejection(err);
  });
  resetBeforeExit();
  process.on('beforeExit', onBeforeExit);

  const appRoot = process.env.LAMBDA_TASK_ROOT || process.cwd();
  const handlerName = process.env._HANDLER || process.argv[2] || '';
  let handler;
  try {
    handler = await loadUserFunction(appRoot, handlerName);
  } catch (err) {
    logError('Uncaught Exception', err);
    client.postInitError(err, () => process.exit(129));
    return;
  }
  new Runtime(client, handler, errorCallbacks).scheduleIteration();
}

main();
