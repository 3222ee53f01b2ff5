"""hello-python: lamb's Python hello world (any python3.x runtime,
handler lambda_function.lambda_handler)."""

import logging
import os

logger = logging.getLogger()
logger.setLevel(logging.INFO)

# Module-level state is created once per environment (the cold start) and
# lives on across warm invocations.
invocations = 0


def lambda_handler(event, context):
    global invocations
    invocations += 1
    name = event.get("name", "world") if isinstance(event, dict) else "world"
    logger.info("invocation %d in this environment", invocations)
    return {
        "message": "Hello, {}!".format(name),
        "invocations": invocations,
        "requestId": context.aws_request_id,
        "runtime": os.environ.get("AWS_EXECUTION_ENV", "").replace("AWS_Lambda_", ""),
    }
