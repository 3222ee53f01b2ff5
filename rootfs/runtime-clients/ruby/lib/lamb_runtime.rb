# frozen_string_literal: true

# lamb's runtime client for every ruby3.x runtime.
#
# Speaks Lambda's Runtime API (http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/...)
# with Ruby's standard library only, and behaves as Lambda's own Ruby client
# (aws_lambda_ric): the handler is `file.method` or `file.Module::Class.method`
# (`file` relative to $LAMBDA_TASK_ROOT, without `.rb`), called as
# `handler(event:, context:)` with the event parsed from JSON and the result
# returned as JSON; errors are reported as
# {"errorMessage", "errorType": "Function<Class>", "stackTrace"} and load
# failures as "Init<Class>" to /init/error, after which the process exits.
# A Logger the function creates follows AWS_LAMBDA_LOG_LEVEL and, with
# AWS_LAMBDA_LOG_FORMAT=JSON, writes one JSON record per message
# ({"timestamp", "level", "message", "requestId"}); `puts` stays plain text.

require 'json'
require 'logger'
require 'net/http'
require 'time'

module LambRuntime
  API_PREFIX = '/2018-06-01/runtime'

  # The context object handlers get, with aws_lambda_ric's attributes.
  class Context
    attr_reader :aws_request_id, :invoked_function_arn, :log_group_name, :log_stream_name,
                :function_name, :memory_limit_in_mb, :function_version, :identity,
                :client_context, :deadline_ms

    def initialize(headers)
      @aws_request_id = headers['lambda-runtime-aws-request-id']
      @invoked_function_arn = headers['lambda-runtime-invoked-function-arn']
      @deadline_ms = headers['lambda-runtime-deadline-ms'].to_i
      @identity = parse_optional(headers['lambda-runtime-cognito-identity'])
      @client_context = parse_optional(headers['lambda-runtime-client-context'])
      @log_group_name = ENV['AWS_LAMBDA_LOG_GROUP_NAME']
      @log_stream_name = ENV['AWS_LAMBDA_LOG_STREAM_NAME']
      @function_name = ENV['AWS_LAMBDA_FUNCTION_NAME']
      @memory_limit_in_mb = ENV['AWS_LAMBDA_FUNCTION_MEMORY_SIZE']
      @function_version = ENV['AWS_LAMBDA_FUNCTION_VERSION']
    end

    def get_remaining_time_in_millis
      [@deadline_ms - (Process.clock_gettime(Process::CLOCK_REALTIME, :millisecond)), 0].max
    end

    private

    def parse_optional(value)
      return nil if value.nil? || value.empty?

      JSON.parse(value)
    rescue JSON::ParserError
      nil
    end
  end

  # What every new ::Logger starts with, from Lambda's logging configuration:
  # the level (Lambda's TRACE is Ruby's DEBUG) and, in JSON mode, a formatter
  # writing AWS's structured record with the current invocation's request id.
  module LoggerDefaults
    LEVELS = { 'TRACE' => ::Logger::DEBUG, 'DEBUG' => ::Logger::DEBUG, 'INFO' => ::Logger::INFO,
               'WARN' => ::Logger::WARN, 'ERROR' => ::Logger::ERROR, 'FATAL' => ::Logger::FATAL }.freeze

    JSON_FORMATTER = proc do |severity, time, _progname, msg|
      text = case msg
             when ::String then msg
             when ::Exception then "#{msg.message} (#{msg.class})\n#{(msg.backtrace || []).join("\n")}"
             else msg.inspect
             end
      record = { 'timestamp' => time.getutc.iso8601(3), 'level' => severity, 'message' => text,
                 'requestId' => LambRuntime.request_id }
      "#{JSON.generate(record)}\n"
    end

    def initialize(*args, **kwargs, &block)
      super
      level = LEVELS[ENV['AWS_LAMBDA_LOG_LEVEL'].to_s.upcase]
      self.level = level if level
      self.formatter = JSON_FORMATTER if ENV['AWS_LAMBDA_LOG_FORMAT'].to_s.casecmp?('JSON')
    end
  end
  ::Logger.prepend(LoggerDefaults)

  class << self
    # The request id of the invocation in progress (nil during init).
    attr_accessor :request_id
  end

  # The Runtime API over one kept-alive connection.
  class Api
    def initialize(address)
      host, port = address.split(':', 2)
      @http = Net::HTTP.new(host, (port || 80).to_i)
      # /next is a long poll: no read timeout.
      @http.read_timeout = nil
      @http.keep_alive_timeout = 3600
      @http.start
    end

    def next_invocation
      res = @http.request(Net::HTTP::Get.new("#{API_PREFIX}/invocation/next"))
      raise "GET /next answered #{res.code}" unless res.code == '200'

      headers = res.each_header.to_h
      [headers, res.body || '']
    end

    def post(path, body, headers = {})
      req = Net::HTTP::Post.new("#{API_PREFIX}#{path}", { 'Content-Type' => 'application/json' }.merge(headers))
      req.body = body
      res = @http.request(req)
      # A 5xx means the environment is broken: exit, as a container error.
      exit!(1) if res.code.to_i >= 500
      res
    end
  end

  module_function

  def error_body(error, kind)
    {
      'errorMessage' => error.message.to_s,
      'errorType' => "#{kind}<#{error.class}>",
      'stackTrace' => error.backtrace || []
    }
  end

  # One record per line: Lambda's clients write a record's lines joined by CR.
  def log_error(title, body)
    $stdout.write("#{title}\r#{JSON.generate(body)}\n")
  end

  # The handler string `file.method` or `file.Module::Class.method` as
  # [file, receiver constant name or nil, method]; `file` may have
  # directories (`dir/app.handler`) but no dots.
  def parse_handler(handler)
    file, dot, rest = handler.to_s.partition('.')
    if dot.empty? || file.empty? || rest.empty?
      raise ArgumentError, "Bad handler #{handler}, must be of the form FILENAME.METHOD"
    end

    owner, sep, method = rest.rpartition('.')
    sep.empty? ? [file, nil, rest] : [file, owner, method]
  end

  def load_handler(handler, task_root)
    file, owner, method = parse_handler(handler)
    require File.join(task_root, file)
    receiver = owner ? Object.const_get(owner) : Object.new
    unless receiver.respond_to?(method, true)
      raise NoMethodError, "Handler '#{method}' not found in #{owner || file}"
    end

    ->(event, context) { receiver.__send__(method, event: event, context: context) }
  end

  def run
    $stdout.sync = true
    $stderr.sync = true
    api = Api.new(ENV.fetch('AWS_LAMBDA_RUNTIME_API'))
    task_root = ENV['LAMBDA_TASK_ROOT'] || '/var/task'
    begin
      handler = load_handler(ENV['_HANDLER'], task_root)
    rescue Exception => e # rubocop:disable Lint/RescueException -- SyntaxError, LoadError too
      body = error_body(e, 'Init')
      log_error('Init error when loading handler', body)
      api.post('/init/error', JSON.generate(body), 'Lambda-Runtime-Function-Error-Type' => body['errorType'])
      exit!(1)
    end
    loop { invoke_once(api, handler) }
  end

  def invoke_once(api, handler)
    headers, body = api.next_invocation
    id = headers['lambda-runtime-aws-request-id']
    LambRuntime.request_id = id
    if (trace = headers['lambda-runtime-trace-id'])
      ENV['_X_AMZN_TRACE_ID'] = trace
    else
      ENV.delete('_X_AMZN_TRACE_ID')
    end
    begin
      event = body.empty? ? nil : JSON.parse(body)
      result = handler.call(event, Context.new(headers))
      api.post("/invocation/#{id}/response", JSON.generate(result))
    rescue Exception => e # rubocop:disable Lint/RescueException -- report everything the handler raises
      raise if e.is_a?(SystemExit)

      body = error_body(e, 'Function')
      log_error('Error raised from handler method', body)
      api.post("/invocation/#{id}/error", JSON.generate(body), 'Lambda-Runtime-Function-Error-Type' => body['errorType'])
    end
  end
end

LambRuntime.run if $PROGRAM_NAME == __FILE__
