//! Event source mappings for RabbitMQ queues: Lambda's five
//! EventSourceMapping operations (`api`), and one poller per enabled mapping
//! (`poller`) that reads a queue in batches and acknowledges a batch only
//! after the function succeeded with it.
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
mod poller;

pub use api::routes;

use crate::state::AppState;
use lamb_protocol::errors::Chain;
use lamb_types::esm::EventSourceMappingConfiguration;
use percent_encoding::percent_decode_str;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use tokio::sync::watch;

#[derive(Debug, thiserror::Error)]
#[error("--rabbitmq {0:?}: expected NAME=amqp://USER:PASS@HOST:PORT[/VHOST]")]
pub struct BrokerSyntax(String);

/// Where a broker is and how to log in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broker {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub vhost: Option<String>,
}

/// The brokers the daemon was told about, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Brokers(BTreeMap<String, Broker>);

impl Brokers {
    pub fn parse(args: &[String]) -> Result<Self, BrokerSyntax> {
        let mut out = BTreeMap::new();
        for arg in args {
            let bad = || BrokerSyntax(arg.clone());
            let (name, url) = arg.split_once('=').ok_or_else(bad)?;
            let rest = url.strip_prefix("amqp://").ok_or_else(bad)?;
            let (auth, rest) = rest.rsplit_once('@').ok_or_else(bad)?;
            let (user, password) = auth.split_once(':').ok_or_else(bad)?;
            let (hostport, vhost) = match rest.split_once('/') {
                Some((h, v)) if !v.is_empty() => (h, Some(percent_decode_str(v).decode_utf8_lossy().into_owned())),
                Some((h, _)) => (h, None),
                None => (rest, None),
            };
            let (host, port) = match hostport.rsplit_once(':') {
                Some((h, p)) => (h, p.parse().map_err(|_| bad())?),
                None => (hostport, 5672),
            };
            if name.is_empty() || host.is_empty() {
                return Err(bad());
            }
            let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
            out.insert(
                name.to_owned(),
                Broker {
                    host: host.to_owned(),
                    port,
                    user: decode(user),
                    password: decode(password),
                    vhost,
                },
            );
        }
        Ok(Self(out))
    }

    pub fn get(&self, name: &str) -> Option<&Broker> {
        self.0.get(name)
    }
}

/// What makes a poller restart when it changes.
fn fingerprint(m: &EventSourceMappingConfiguration) -> String {
    format!(
        "{}\0{}\0{}\0{}\0{:?}\0{:?}",
        m.function_arn,
        m.event_source_arn,
        m.batch_size,
        m.maximum_batching_window_in_seconds,
        m.queues,
        m.source_access_configurations
    )
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
        let broker = lamb_types::esm::broker_name(&st.ctx, &m.event_source_arn)
            .ok()
            .and_then(|n| st.brokers.get(n).cloned());
        let Some(broker) = broker else {
            tracing::warn!(uuid, arn = %m.event_source_arn, "mapping names a broker this daemon was not given");
            continue;
        };
        let (tx, rx) = watch::channel(false);
        running.insert(
            uuid.clone(),
            Running {
                fingerprint: fingerprint(&m),
                stop: tx,
            },
        );
        tokio::spawn(poller::run(st.clone(), m, broker, rx));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls() {
        let b = Brokers::parse(&["local=amqp://guest:gu%40st@127.0.0.1:5673/%2Fv".into()]).unwrap();
        let local = b.get("local").unwrap();
        assert_eq!((local.host.as_str(), local.port), ("127.0.0.1", 5673));
        assert_eq!((local.user.as_str(), local.password.as_str()), ("guest", "gu@st"));
        assert_eq!(local.vhost.as_deref(), Some("/v"));
        let d = Brokers::parse(&["d=amqp://u:p@h".into()]).unwrap();
        assert_eq!(d.get("d").unwrap().port, 5672);
        assert!(Brokers::parse(&["x=http://h".into()]).is_err());
        assert!(Brokers::parse(&["nohost".into()]).is_err());
    }
}
