//! Lambda's wire and configuration types, ARNs, qualifiers, errors and the
//! validation rules the control-plane API answers with. No I/O.
//!
//! The HTTP layer deserializes a request into one of the `*Request` types,
//! turns it into a [`FunctionSpec`] (defaults applied), validates it with
//! [`Rules`], and maps any [`LambdaError`] to a response through
//! [`LambdaError::http_status`] and [`LambdaError::body`].

pub mod alias;
pub mod arn;
pub mod blob;
pub mod code_signing;
pub mod error;
pub mod esm;
pub mod esm_filter;
pub mod filesystem;
pub mod function;
pub mod function_url;
pub mod image;
pub mod invoke_config;
pub mod layer;
pub mod limits;
pub mod policy;
pub mod qualifier;
pub mod runtime;
pub mod spec;
pub mod timefmt;
pub mod validate;

pub use alias::{AliasConfiguration, AliasRoutingConfiguration, CreateAliasRequest, UpdateAliasRequest};
pub use arn::{ArnContext, FunctionRef, LayerVersionArn};
pub use blob::Blob;
pub use error::{BodyShape, ErrorBody, ErrorKind, LambdaError};
pub use filesystem::FileSystemConfig;
pub use function::{
    Architecture, CreateFunctionRequest, DeadLetterConfig, Environment, EnvironmentResponse, EphemeralStorage,
    FunctionCode, FunctionConfiguration, LastUpdateStatus, LayerRef, LogFormat, LoggingConfig, PackageType,
    PublishVersionRequest, RuntimeVersionConfig, SnapStart, SnapStartResponse, State, TracingConfig, TracingMode,
    UpdateFunctionCodeRequest, UpdateFunctionConfigurationRequest,
};
pub use function_url::{
    Cors, CreateFunctionUrlConfigRequest, FunctionUrlAuthType, FunctionUrlConfig, FunctionUrlSettings, InvokeMode,
    ListFunctionUrlConfigsResponse, UpdateFunctionUrlConfigRequest,
};
pub use image::{FunctionImage, ImageConfig, ImageConfigResponse, PullFailure, PulledImage};
pub use invoke_config::{
    Concurrency, DestinationConfig, FunctionEventInvokeConfig, OnFailure, OnSuccess,
    PutFunctionEventInvokeConfigRequest,
};
pub use layer::{
    LayerVersionContentInput, LayerVersionContentOutput, LayerVersionResponse, LayerVersionsListItem, LayersListItem,
    PublishLayerVersionRequest,
};
pub use limits::Limits;
pub use qualifier::{Qualifier, Version};
pub use runtime::{Change, Deprecation};
pub use spec::FunctionSpec;
pub use validate::Rules;
