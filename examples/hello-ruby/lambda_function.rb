# frozen_string_literal: true

# hello-ruby: lamb's Ruby hello world (any ruby3.x runtime, handler
# lambda_function.lambda_handler).

# Module-level state is created once per environment (the cold start) and
# lives on across warm invocations.
$invocations = 0

def lambda_handler(event:, context:)
  $invocations += 1
  name = event.is_a?(Hash) && event['name'].is_a?(String) ? event['name'] : 'world'
  puts "invocation #{$invocations} in this environment"
  {
    'message' => "Hello, #{name}!",
    'invocations' => $invocations,
    'requestId' => context.aws_request_id,
    'runtime' => ENV.fetch('AWS_EXECUTION_ENV', '').sub('AWS_Lambda_', '')
  }
end
