// hello-node: lamb's Node.js hello world (any nodejs*.x runtime, handler
// index.handler).

// Module-level state is created once per environment (the cold start) and
// lives on across warm invocations.
let invocations = 0;

exports.handler = async (event, context) => {
  invocations += 1;
  const name = event && typeof event.name === 'string' ? event.name : 'world';
  console.log(`invocation ${invocations} in this environment`);
  return {
    message: `Hello, ${name}!`,
    invocations,
    requestId: context.awsRequestId,
    runtime: (process.env.AWS_EXECUTION_ENV || '').replace('AWS_Lambda_', ''),
  };
};
