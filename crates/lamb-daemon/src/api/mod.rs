//! The routes of Lambda's control-plane API (spec 3.2), one module per
//! group, and the answer for every operation lamb does not implement.

mod aliases;
mod async_events;
mod code_signing;
mod concurrency;
mod event_stream;
mod function_settings;
mod functions;
pub(crate) mod invoke;
mod lamb_ext;
mod layers;
mod policies;
mod provisioned;
mod tags;
mod unsupported;

use crate::state::AppState;
use axum::routing::{delete, get, post, put};
use axum::Router;

pub use async_events::{EventItem, EVENTS_PATH};
pub(crate) use functions::SHARED_BUNDLE_GRACE;
pub use lamb_ext::{LogEvent, LogsResponse, StatusResponse, LOGS_PATH, STATUS_PATH};
pub use policies::url_policy;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/2015-03-31/functions", post(functions::create).get(functions::list))
        .route("/2015-03-31/functions/", post(functions::create).get(functions::list))
        .route(
            "/2015-03-31/functions/{name}",
            get(functions::get_function).delete(functions::delete),
        )
        .route(
            "/2015-03-31/functions/{name}/configuration",
            get(functions::get_configuration).put(functions::update_configuration),
        )
        .route("/2015-03-31/functions/{name}/code", put(functions::update_code))
        .route(
            "/2015-03-31/functions/{name}/versions",
            post(functions::publish_version).get(functions::list_versions),
        )
        .route("/2015-03-31/functions/{name}/invocations", post(invoke::invoke))
        .route(
            "/2021-11-15/functions/{name}/response-streaming-invocations",
            post(invoke::invoke_with_response_stream),
        )
        .route(
            "/2015-03-31/functions/{name}/aliases",
            post(aliases::create).get(aliases::list),
        )
        .route(
            "/2015-03-31/functions/{name}/aliases/{alias}",
            get(aliases::get).put(aliases::update).delete(aliases::delete),
        )
        .route(
            "/2015-03-31/functions/{name}/policy",
            post(policies::add_permission).get(policies::get_policy),
        )
        .route(
            "/2015-03-31/functions/{name}/policy/{sid}",
            delete(policies::remove_permission),
        )
        .route(
            "/2018-10-31/layers/{layer}/versions/{version}/policy",
            post(policies::add_layer_permission).get(policies::get_layer_policy),
        )
        .route(
            "/2018-10-31/layers/{layer}/versions/{version}/policy/{sid}",
            delete(policies::remove_layer_permission),
        )
        .route(
            "/2020-04-22/code-signing-configs",
            post(code_signing::create).get(code_signing::list),
        )
        .route(
            "/2020-04-22/code-signing-configs/",
            post(code_signing::create).get(code_signing::list),
        )
        .route(
            "/2020-04-22/code-signing-configs/{arn}",
            get(code_signing::get)
                .put(code_signing::update)
                .delete(code_signing::delete),
        )
        .route(
            "/2020-04-22/code-signing-configs/{arn}/functions",
            get(code_signing::list_functions),
        )
        .route(
            "/2020-06-30/functions/{name}/code-signing-config",
            get(code_signing::get_function)
                .put(code_signing::put_function)
                .delete(code_signing::delete_function),
        )
        .route(
            "/2024-08-31/functions/{name}/recursion-config",
            get(function_settings::get_recursion).put(function_settings::put_recursion),
        )
        .route(
            "/2021-07-20/functions/{name}/runtime-management-config",
            get(function_settings::get_runtime_management).put(function_settings::put_runtime_management),
        )
        .route("/2018-10-31/layers", get(layers::list_or_find))
        .route(
            "/2018-10-31/layers/{layer}/versions",
            post(layers::publish).get(layers::list_versions),
        )
        .route(
            "/2018-10-31/layers/{layer}/versions/{version}",
            get(layers::get).delete(layers::delete),
        )
        .route(
            "/2017-10-31/functions/{name}/concurrency",
            put(concurrency::put).delete(concurrency::delete),
        )
        .route("/2019-09-30/functions/{name}/concurrency", get(concurrency::get))
        .route("/2016-08-19/account-settings", get(concurrency::account_settings))
        .route("/2016-08-19/account-settings/", get(concurrency::account_settings))
        .route(
            "/2017-03-31/tags/{arn}",
            post(tags::tag).get(tags::list).delete(tags::untag),
        )
        .merge(async_events::routes())
        .merge(provisioned::routes())
        .route(STATUS_PATH, get(lamb_ext::status))
        .route(LOGS_PATH, get(lamb_ext::logs))
        .fallback(unsupported::fallback)
        .method_not_allowed_fallback(unsupported::fallback)
}
