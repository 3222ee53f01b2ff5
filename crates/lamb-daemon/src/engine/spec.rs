//! From a function version to a sandbox: the mounts, the limits, the user,
//! and Lambda's environment (spec 2.1) that `lamb init` hands the runtime.

use crate::invoker::InvokeRequest;
use lamb_sandbox::{CpuLimit, IdMapping, Limits, MountSpec, ProcessSpec, SandboxSpec, User};
use lamb_types::ArnContext;
use std::path::{Path, PathBuf};

/// Where `lamb init`'s executable (`lamb-init`, or the daemon's own) appears
/// inside every sandbox; its first argument is `init` either way.
pub const LAMB_IN_SANDBOX: &str = "/.lamb/lamb";
/// Sandbox users are `UID_BASE + slot`, one uid per live sandbox: the kernel
/// counts `RLIMIT_NPROC` per uid, so a shared uid would let one sandbox's
/// processes starve every other.
pub const UID_BASE: u32 = 20_000;
/// The group of every sandbox user (`sbx_user1051`'s in the runtime trees).
pub const SANDBOX_GID: u32 = 990;
/// With `--userns`, slot `n`'s ids inside are `USERNS_BASE + n * 65536 + id` outside.
pub const USERNS_BASE: u32 = 1_000_000;

pub struct SpecInput<'a> {
    pub req: &'a InvokeRequest,
    pub runtime_dir: PathBuf,
    pub lamb_exe: &'a Path,
    pub slot: u32,
    pub log_stream: &'a str,
    pub ctx: &'a ArnContext,
    pub filesystems: &'a crate::filesystems::Filesystems,
    /// Put the sandbox in its own user namespace.
    pub user_namespace: bool,
    /// The function's session credentials, minted for this sandbox.
    pub credentials: Option<&'a crate::sessions::SessionCredentials>,
    /// `AWS_ENDPOINT_URL_LAMBDA`, when sandboxes can reach the API.
    pub lambda_endpoint: Option<&'a str>,
    /// `AWS_LAMBDA_INITIALIZATION_TYPE`: `on-demand` or
    /// `provisioned-concurrency`.
    pub initialization_type: &'static str,
    /// An Image function's: the loader and libraries init runs on.
    pub image_lib: Option<PathBuf>,
}

/// The id mapping of the sandbox in `slot`: 65536 ids of its own outside, so
/// no two live sandboxes share an outside uid (each slot's user differs
/// inside as well). A slot too high to fit in 32 bits saturates, and the
/// sandbox library refuses the spec.
pub fn user_namespace(slot: u32) -> IdMapping {
    let base = slot
        .checked_mul(IdMapping::MIN_SIZE)
        .and_then(|offset| offset.checked_add(USERNS_BASE))
        .unwrap_or(u32::MAX);
    IdMapping {
        outside_uid_base: base,
        outside_gid_base: base,
        size: IdMapping::MIN_SIZE,
    }
}

/// The runtime's name, `provided.al2023` for a function without one.
pub fn runtime_of(req: &InvokeRequest) -> String {
    req.function
        .spec
        .runtime
        .clone()
        .unwrap_or_else(|| "provided.al2023".to_owned())
}

/// An Image function's process under `lamb init`: the command after
/// `--cwd DIR --`, and its root, the image's layers.
fn image_process(req: &InvokeRequest) -> Option<(Vec<String>, Vec<PathBuf>)> {
    let (argv, cwd) = req.function.spec.image.as_ref()?.command()?;
    let tail = ["--cwd".to_owned(), cwd, "--".to_owned()]
        .into_iter()
        .chain(argv)
        .collect();
    Some((tail, req.image_layers.clone()))
}

pub fn build(input: &SpecInput<'_>) -> SandboxSpec {
    let req = input.req;
    let f = &req.function.spec;
    let runtime = runtime_of(req);
    let image = image_process(req);
    let mut mounts = Vec::with_capacity(4);
    // An image brings its own /var/task.
    if image.is_none() {
        mounts.push(MountSpec::Bind {
            source: req.code_path.clone(),
            target: "/var/task".into(),
        });
    }
    mounts.push(MountSpec::Bind {
        source: input.lamb_exe.to_path_buf(),
        target: LAMB_IN_SANDBOX.into(),
    });
    if let (Some(_), Some(lib)) = (&image, &input.image_lib) {
        mounts.push(MountSpec::Bind {
            source: lib.clone(),
            target: super::image_init::LIB_IN_SANDBOX.into(),
        });
    }
    if !req.layer_paths.is_empty() {
        mounts.push(MountSpec::Layers {
            layers: req.layer_paths.clone(),
            target: "/opt".into(),
        });
    }
    mounts.extend(input.filesystems.mounts(input.ctx, &f.file_system_configs));
    let mut argv = Vec::with_capacity(16);
    if image.is_some() {
        argv.extend(super::image_init::loader_argv());
    }
    argv.extend([
        LAMB_IN_SANDBOX.to_owned(),
        "init".to_owned(),
        "--runtime".to_owned(),
        runtime.clone(),
        "--account".to_owned(),
        input.ctx.account.clone(),
    ]);
    let mut rootfs = vec![input.runtime_dir.clone()];
    if let Some((tail, layers)) = &image {
        argv.extend(tail.iter().cloned());
        rootfs.clone_from(layers);
    }
    let process = ProcessSpec {
        argv,
        env: environment(input, &runtime),
        // An image's working directory may not exist: init reports that.
        cwd: if image.is_some() {
            "/".into()
        } else {
            "/var/task".into()
        },
    };
    let user = User {
        uid: UID_BASE + input.slot,
        gid: SANDBOX_GID,
    };
    let mut spec = SandboxSpec::new(rootfs, process, user);
    spec.mounts = mounts;
    spec.tmp_size_bytes = u64::from(f.ephemeral_storage.size) * 1024 * 1024;
    spec.limits = Limits::for_memory_mb(u64::from(f.memory_size));
    // Init at a full core; the cold start sets the invocations' quota at
    // the runtime's first `/next`.
    spec.limits.cpu = CpuLimit::during_init(u64::from(f.memory_size));
    spec.kill_on_parent_death = true;
    spec.user_namespace = input.user_namespace.then(|| user_namespace(input.slot));
    // lamb init's relaying is not charged to the function's quota.
    spec.init_cgroup = true;
    spec
}

/// A pre-initialised sandbox of `runtime` (docs/prewarm.md): the runtime's
/// root and `lamb`, nothing at `/var/task` yet, `memory_mb` of memory, and
/// only the environment every function of the runtime shares
/// ([`runtime_environment`]; for Node.js the memory size too, which sizes
/// V8's heap at start). `lamb init --prewarm` starts the runtime at once.
pub fn prewarm(input: &PrewarmInput<'_>) -> SandboxSpec {
    let argv = [
        LAMB_IN_SANDBOX,
        "init",
        "--runtime",
        input.runtime,
        "--account",
        input.account,
        "--prewarm",
    ]
    .map(str::to_owned)
    .to_vec();
    let mut env: Vec<String> = runtime_environment(input.runtime)
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if let Some(mb) = input.heap_memory_mb {
        env.push(format!("AWS_LAMBDA_FUNCTION_MEMORY_SIZE={mb}"));
    }
    let process = ProcessSpec {
        argv,
        env,
        cwd: "/var/task".into(),
    };
    let user = User {
        uid: UID_BASE + input.slot,
        gid: SANDBOX_GID,
    };
    let mut spec = SandboxSpec::new(vec![input.runtime_dir.clone()], process, user);
    spec.mounts = vec![MountSpec::Bind {
        source: input.lamb_exe.to_path_buf(),
        target: LAMB_IN_SANDBOX.into(),
    }];
    spec.limits = Limits::for_memory_mb(u64::from(input.memory_mb));
    spec.limits.cpu = CpuLimit::during_init(u64::from(input.memory_mb));
    spec.kill_on_parent_death = true;
    spec.init_cgroup = true;
    spec
}

/// What [`prewarm`] needs.
pub struct PrewarmInput<'a> {
    pub runtime: &'a str,
    pub runtime_dir: PathBuf,
    pub lamb_exe: &'a Path,
    pub account: &'a str,
    pub slot: u32,
    pub memory_mb: u32,
    /// Node.js: the function memory its heap is sized for.
    pub heap_memory_mb: Option<u32>,
}

/// Lambda's variables, then the function's own (validation already refused
/// reserved names among those).
fn environment(input: &SpecInput<'_>, runtime: &str) -> Vec<String> {
    let req = input.req;
    let f = &req.function.spec;
    let mut env: Vec<(String, String)> = Vec::with_capacity(32);
    let mut set = |k: &str, v: String| env.push((k.to_owned(), v));
    if let Some(h) = &f.handler {
        set("_HANDLER", h.clone());
    }
    set("AWS_REGION", input.ctx.region.clone());
    set("AWS_DEFAULT_REGION", input.ctx.region.clone());
    set("AWS_LAMBDA_FUNCTION_NAME", req.function.name.clone());
    set("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", f.memory_size.to_string());
    set("AWS_LAMBDA_FUNCTION_VERSION", req.executed_version.to_string());
    set("AWS_LAMBDA_INITIALIZATION_TYPE", input.initialization_type.into());
    set(
        "AWS_LAMBDA_LOG_GROUP_NAME",
        format!("/aws/lambda/{}", req.function.name),
    );
    set("AWS_LAMBDA_LOG_STREAM_NAME", input.log_stream.to_owned());
    // LoggingConfig, read by the runtime clients as AWS's read them: the
    // format always, the application log level in JSON only.
    let logging = &f.logging_config;
    let format = match logging.log_format {
        lamb_types::LogFormat::Json => "JSON",
        lamb_types::LogFormat::Text => "Text",
    };
    set("AWS_LAMBDA_LOG_FORMAT", format.into());
    if let Some(level) = logging.application_level() {
        set("AWS_LAMBDA_LOG_LEVEL", level.to_owned());
    }
    if let Some(c) = input.credentials {
        set("AWS_ACCESS_KEY_ID", c.access_key_id.clone());
        set("AWS_SECRET_ACCESS_KEY", c.secret_access_key.clone());
        set("AWS_SESSION_TOKEN", c.session_token.clone());
    }
    // Current AWS SDKs send a client of Lambda there: a function's
    // `boto3.client("lambda")` reaches this daemon with no code change.
    if let Some(endpoint) = input.lambda_endpoint {
        set("AWS_ENDPOINT_URL_LAMBDA", endpoint.to_owned());
    }
    for (k, v) in runtime_environment(runtime) {
        set(k, v);
    }
    if let Some(pulled) = f.image.as_ref().and_then(|i| i.pulled.as_ref()) {
        merge_image_env(&mut env, &pulled.env);
    }
    for (k, v) in &f.environment {
        match env.iter_mut().find(|(name, _)| name == k) {
            Some(slot) => slot.1.clone_from(v),
            None => env.push((k.clone(), v.clone())),
        }
    }
    env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// The variables of `runtime` that are the same for every function: all
/// that a runtime's start reads (its interpreter, the C library, the
/// bootstrap), so that a pre-initialised sandbox started with only these
/// is what a plain start would have started (docs/prewarm.md).
pub fn runtime_environment(runtime: &str) -> Vec<(&'static str, String)> {
    let mut env: Vec<(&'static str, String)> = Vec::with_capacity(16);
    let mut set = |k: &'static str, v: String| env.push((k, v));
    if !lamb_protocol::is_custom_runtime(runtime) {
        set("AWS_EXECUTION_ENV", format!("AWS_Lambda_{runtime}"));
    }
    set("AWS_LAMBDA_RUNTIME_API", lamb_protocol::RUNTIME_API.into());
    set("LAMBDA_TASK_ROOT", "/var/task".into());
    set("LAMBDA_RUNTIME_DIR", "/var/runtime".into());
    set("TZ", ":UTC".into());
    // A sandbox runs as a uid of its own (UID_BASE + slot) that no
    // /etc/passwd names, so libc finds no home for it, and Node's
    // os.homedir(), which the AWS SDK for JavaScript calls for its config
    // files, throws. /tmp is sbx_user1051's home in the runtime trees.
    set("HOME", "/tmp".into());
    set("LANG", "en_US.UTF-8".into());
    set("PATH", "/usr/local/bin:/usr/bin/:/bin:/opt/bin".into());
    set(
        "LD_LIBRARY_PATH",
        "/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib".into(),
    );
    set("AWS_XRAY_CONTEXT_MISSING", "LOG_ERROR".into());
    if runtime.starts_with("python") {
        let v = runtime.trim_start_matches("python");
        set(
            "PYTHONPATH",
            format!("/var/runtime:/var/task:/opt/python/lib/python{v}/site-packages:/opt/python"),
        );
    }
    if let Some(major) = runtime.strip_prefix("nodejs").and_then(|r| r.split('.').next()) {
        set(
            "NODE_PATH",
            format!("/opt/nodejs/node{major}/node_modules:/opt/nodejs/node_modules:/var/runtime/node_modules:/var/runtime:/var/task"),
        );
    }
    env
}

/// The image's `Env` over lamb's defaults (`PATH`, `LANG`, ...), except the
/// names Lambda itself sets (`AWS_*`, `_HANDLER`); the function's own
/// variables come after, over both.
fn merge_image_env(env: &mut Vec<(String, String)>, image_env: &[String]) {
    for entry in image_env {
        let Some((k, v)) = entry.split_once('=') else {
            continue;
        };
        if k.starts_with("AWS_") || k == "_HANDLER" || k.is_empty() {
            continue;
        }
        match env.iter_mut().find(|(name, _)| name == k) {
            Some(slot) => v.clone_into(&mut slot.1),
            None => env.push((k.to_owned(), v.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image_request() -> InvokeRequest {
        use lamb_store::{CodeDigest, CodeInfo, FunctionRecord};
        let image = lamb_types::FunctionImage {
            uri: "r.example/app:1".into(),
            config: lamb_types::ImageConfig {
                command: Some(vec!["other.handler".into()]),
                ..Default::default()
            },
            pulled: Some(lamb_types::PulledImage {
                entrypoint: vec!["/lambda-entrypoint.sh".into()],
                cmd: vec!["app.handler".into()],
                working_dir: "/var/task".into(),
                env: vec!["PATH=/var/lang/bin:/usr/bin".into()],
                ..Default::default()
            }),
            failure: None,
        };
        InvokeRequest {
            request_id: "id".into(),
            function: FunctionRecord {
                name: "f".into(),
                version: lamb_types::Version::Latest,
                spec: lamb_types::FunctionSpec {
                    image: Some(image),
                    ..Default::default()
                },
                version_description: None,
                code: CodeInfo {
                    digest: CodeDigest::of(b"x"),
                    code_size: 0,
                    unzipped_size: 0,
                },
                layers: Vec::new(),
                revision_id: "r".into(),
                last_modified: String::new(),
                state: Default::default(),
                last_update_status: Default::default(),
            },
            executed_version: lamb_types::Version::Latest,
            invoked_function_arn: String::new(),
            code_path: "/code".into(),
            layer_paths: Vec::new(),
            image_layers: vec!["/l1".into(), "/l2".into()],
            payload: Vec::new(),
            log_type: crate::invoker::LogType::None,
            client_context: None,
            reserved_concurrency: None,
            total_reserved_concurrency: 0,
            stream: None,
        }
    }

    #[test]
    fn an_image_is_the_root_and_its_command_runs_under_init() {
        let req = image_request();
        let ctx = ArnContext::default();
        let filesystems = crate::filesystems::Filesystems::default();
        let spec = build(&SpecInput {
            req: &req,
            runtime_dir: "/runtimes/provided.al2023".into(),
            lamb_exe: Path::new("/usr/bin/lamb"),
            slot: 0,
            log_stream: "s",
            ctx: &ctx,
            filesystems: &filesystems,
            user_namespace: false,
            credentials: None,
            lambda_endpoint: None,
            initialization_type: "on-demand",
            image_lib: Some("/data/image-init".into()),
        });
        assert_eq!(spec.rootfs_layers, [PathBuf::from("/l1"), PathBuf::from("/l2")]);
        assert!(!spec.mounts.iter().any(|m| m.target() == Path::new("/var/task")));
        assert!(spec.mounts.iter().any(|m| m.target() == Path::new("/.lamb-lib")));
        let argv = &spec.process.argv;
        assert_eq!(
            argv[..4],
            ["/.lamb-lib/ld.so", "--library-path", "/.lamb-lib", LAMB_IN_SANDBOX]
        );
        let tail = argv.iter().skip_while(|a| *a != "--cwd").cloned().collect::<Vec<_>>();
        assert_eq!(
            tail,
            ["--cwd", "/var/task", "--", "/lambda-entrypoint.sh", "other.handler"]
        );
        assert!(spec.process.env.contains(&"PATH=/var/lang/bin:/usr/bin".to_owned()));
        assert!(spec.init_cgroup, "init runs beside the function's CPU group");
    }

    #[test]
    fn image_env_sits_between_lambdas_and_the_functions() {
        let mut env = vec![
            ("PATH".to_owned(), "/usr/bin".to_owned()),
            ("AWS_REGION".to_owned(), "us-east-1".to_owned()),
        ];
        merge_image_env(
            &mut env,
            &[
                "PATH=/var/lang/bin:/usr/bin".into(),
                "AWS_REGION=x".into(),
                "APP=1".into(),
                "junk".into(),
            ],
        );
        assert_eq!(
            env,
            [
                ("PATH", "/var/lang/bin:/usr/bin"),
                ("AWS_REGION", "us-east-1"),
                ("APP", "1")
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
    }

    #[test]
    fn every_slot_gets_its_own_outside_range() {
        let first = user_namespace(0);
        let second = user_namespace(1);
        assert_eq!(first.outside_uid_base, USERNS_BASE);
        assert_eq!(second.outside_uid_base, USERNS_BASE + 65_536);
        assert!(first.outside_uid(UID_BASE + 1) < second.outside_uid_base);
        assert_eq!(user_namespace(u32::MAX).outside_uid_base, u32::MAX);
    }
}
