// A scenario of the AWS SDK for JavaScript v3 against lamb's API, run by
// integration-tests/test_sdk_clients.py:
//
//     node scenario.mjs core|permissions FUNCTION ZIP
//
// with LAMB_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and LAMB_ROLE
// in the environment. Each step prints one line, `step: what came back`;
// the first failure ends it with exit status 1.

import fs from 'node:fs';
import {
  AddPermissionCommand,
  CreateAliasCommand,
  CreateFunctionCommand,
  DeleteFunctionCommand,
  GetPolicyCommand,
  InvokeCommand,
  InvokeWithResponseStreamCommand,
  LambdaClient,
  PublishVersionCommand,
  RemovePermissionCommand,
} from '@aws-sdk/client-lambda';

const lam = new LambdaClient({
  region: 'us-east-1',
  endpoint: process.env.LAMB_ENDPOINT,
  credentials: {
    accessKeyId: process.env.AWS_ACCESS_KEY_ID,
    secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY,
  },
  maxAttempts: 1,
});
const text = (bytes) => Buffer.from(bytes ?? []).toString('utf8');

// Create, publish, alias, invoke (plain and streamed, by the alias), delete.
async function core(name, zip) {
  const created = await lam.send(
    new CreateFunctionCommand({
      FunctionName: name,
      Runtime: 'nodejs18.x',
      Role: process.env.LAMB_ROLE,
      Handler: 'index.handler',
      Code: { ZipFile: fs.readFileSync(zip) },
    }),
  );
  console.log(`create: ${created.FunctionArn}`);
  const { Version } = await lam.send(new PublishVersionCommand({ FunctionName: name }));
  console.log(`publish: ${Version}`);
  const alias = await lam.send(new CreateAliasCommand({ FunctionName: name, Name: 'live', FunctionVersion: Version }));
  console.log(`alias: ${alias.AliasArn}`);
  const out = await lam.send(
    new InvokeCommand({ FunctionName: name, Qualifier: 'live', Payload: Buffer.from('{}') }),
  );
  console.log(`invoke: ${out.ExecutedVersion} ${text(out.Payload)}`);
  const streamed = await lam.send(
    new InvokeWithResponseStreamCommand({ FunctionName: name, Qualifier: 'live', Payload: Buffer.from('{}') }),
  );
  // The chunks' bytes together (how the runtime's writes fall into chunks
  // is not the test's), then how it ended.
  let bytes = '';
  let end = 'missing';
  for await (const event of streamed.EventStream) {
    if (event.PayloadChunk) {
      bytes += text(event.PayloadChunk.Payload);
    } else if (event.InvokeComplete) {
      end = event.InvokeComplete.ErrorCode ?? 'none';
    } else {
      end = `other ${JSON.stringify(event)}`;
    }
  }
  console.log(`stream: ${bytes} complete=${end}`);
  await lam.send(new DeleteFunctionCommand({ FunctionName: name }));
  console.log('delete: ok');
}

// AddPermission, GetPolicy, RemovePermission on a function that exists.
async function permissions(name) {
  const added = await lam.send(
    new AddPermissionCommand({
      FunctionName: name,
      StatementId: 'sdk-test',
      Action: 'lambda:InvokeFunction',
      Principal: 's3.amazonaws.com',
    }),
  );
  console.log(`add_permission: ${added.Statement}`);
  const policy = await lam.send(new GetPolicyCommand({ FunctionName: name }));
  console.log(`get_policy: ${policy.Policy}`);
  await lam.send(new RemovePermissionCommand({ FunctionName: name, StatementId: 'sdk-test' }));
  console.log('remove_permission: ok');
}

const [mode, name, zip] = process.argv.slice(2);
try {
  if (mode === 'core') {
    await core(name, zip);
  } else if (mode === 'permissions') {
    await permissions(name);
  } else {
    throw new Error('usage: node scenario.mjs core|permissions FUNCTION ZIP');
  }
} catch (err) {
  console.log(`error: ${err.name}: ${err.message}`);
  process.exit(1);
}
