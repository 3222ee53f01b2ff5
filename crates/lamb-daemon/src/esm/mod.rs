//! Event source mappings: Lambda's five EventSourceMapping operations
//! (`api`), and one poller per enabled mapping that reads its source in
//! batches and settles a batch only after the function succeeded with it:
//! SQS queues (`sqs`), Kinesis and DynamoDB streams (`streams`, their
//! tumbling windows in `window`), RabbitMQ queues (`poller`). What they
//! share (batching, the payload cap, filters, invoking, partial batch
//! responses, `LastProcessingResult`) is `batch`.
//!
//! AWS services are reached at `lamb serve --aws-endpoint SERVICE=URL`, or
//! at AWS's endpoint of the source's region (`aws`).
//!
//! Brokers are named by the daemon: `lamb serve --rabbitmq
//! NAME=amqp://USER:PASS@HOST:PORT[/VHOST]`; a mapping's `EventSourceArn`
//! `arn:aws:mq:<region>:<account>:broker:NAME:<id>` picks one, and its
//! `VIRTUAL_HOST` source access configuration the virtual host.
//!
//! A supervisor reads the mappings from the registry twice a second and
//! starts, restarts (on a change) or stops their pollers, so the API only
//! writes the registry and a restart of the daemon resumes every mapping.

mod api;
pub mod aws;
mod batch;
pub mod brokers;
mod poller;
mod sqs;
mod streams;
mod window;

pub use api::routes;
pub use brokers::{Broker, BrokerSyntax, Brokers};

use crate::state::AppState;
use lamb_protocol::errors::Chain;
use lamb_types::esm::{EventSourceMappingConfiguration, Source};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::watch;

/// What makes a poller restart when it changes: everything but what the
/// pollers themselves write or what does not change how they read.
fn fingerprint(m: &EventSourceMappingConfiguration) -> String {
    let mut m = m.clone();
    m.last_modified = 0.0;
    m.last_processing_result.clear();
    m.state_transition_reason.clear();
    serde_json::to_string(&m).unwrap_or_default()
}

struct Running {
    fingerprint: String,
    stop: watch::Sender<bool>,
}

/// Starts the supervisor of the pollers; once `stop` is set it stops them
/// and ends.
pub fn start(st: AppState, mut stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut running: HashMap<String, Running> = HashMap::new();
        loop {
            match st.blocking(|s| Ok(s.registry.list_event_source_mappings()?)).await {
                Ok(mappings) => reconcile(&st, &mut running, mappings),
                Err(e) => tracing::error!(error = %Chain(&e), "cannot read event source mappings"),
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
        }
        for r in running.into_values() {
            let _ = r.stop.send(true);
        }
    })
}

fn reconcile(st: &AppState, running: &mut HashMap<String, Running>, mappings: Vec<EventSourceMappingConfiguration>) {
    let wanted: HashMap<String, EventSourceMappingConfiguration> = mappings
        .into_iter()
        .filter(|m| m.enabled())
        .map(|m| (m.uuid.clone(), m))
        .collect();
    running.retain(|uuid, r| {
        let keep = wanted.get(uuid).is_some_and(|m| fingerprint(m) == r.fingerprint);
        if !keep {
            let _ = r.stop.send(true);
        }
        keep
    });
    for (uuid, m) in wanted {
        if running.contains_key(&uuid) {
            continue;
        }
        let source = match Source::parse(&st.ctx, &m.event_source_arn) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(uuid, error = %e, "mapping's source cannot be read");
                continue;
            }
        };
        let (tx, rx) = watch::channel(false);
        let fp = fingerprint(&m);
        let st = st.clone();
        match source {
            Source::RabbitMq { broker } => {
                let Some(broker) = st.brokers.get(&broker).cloned() else {
                    tracing::warn!(uuid, arn = %m.event_source_arn, "mapping names a broker this daemon was not given");
                    continue;
                };
                tokio::spawn(poller::run(st, m, broker, rx));
            }
            Source::Sqs { .. } => {
                tokio::spawn(sqs::run(st, m, source, rx));
            }
            Source::Kinesis { .. } | Source::DynamoDbStreams { .. } => {
                tokio::spawn(streams::run(st, m, source, rx));
            }
        }
        running.insert(
            uuid,
            Running {
                fingerprint: fp,
                stop: tx,
            },
        );
    }
}
