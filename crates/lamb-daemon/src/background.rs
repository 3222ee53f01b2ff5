//! Everything the daemon runs beside the API, started one way (each
//! subsystem's `start(state, ..., stop) -> JoinHandle<()>`) and stopped
//! together: the async event worker, the supervisor of the RabbitMQ
//! pollers, the function URL listener and the schedule runner. The file
//! trigger watchers start here too; they are threads that last as long as
//! the process; and the sandboxes of the stored provisioned concurrency
//! configurations.

use crate::state::AppState;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Debug, Clone)]
pub struct BackgroundConfig {
    /// The function URL listener (`--url-listen`); `None`: no listener.
    pub url_listen: Option<SocketAddr>,
    /// The base of the `FunctionUrl`s answered (`--url-base`); `None`: the
    /// path form on the URL listener's address.
    pub url_base: Option<String>,
    /// Schedule time runs this many times faster than real time (tests).
    pub schedule_time_scale: f64,
}

impl Default for BackgroundConfig {
    fn default() -> Self {
        Self {
            url_listen: None,
            url_base: None,
            schedule_time_scale: 1.0,
        }
    }
}

/// The running subsystems.
pub struct Background {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// Starts every subsystem; only binding the URL listener can fail.
pub async fn start(config: &BackgroundConfig, state: AppState) -> std::io::Result<Background> {
    let (stop, rx) = watch::channel(false);
    crate::file_triggers::start(&state);
    crate::provisioned::restore(&state).await;
    crate::snapstart::restore(&state).await;
    let mut tasks = vec![crate::events::start(state.clone(), rx.clone())];
    if let Some(addr) = config.url_listen {
        tasks.push(crate::urls::listen(addr, config.url_base.clone(), state.clone(), rx.clone()).await?);
    }
    let (st, scale) = (state.clone(), config.schedule_time_scale);
    let schedules: crate::cluster::leased::Starter =
        Box::new(move |stop| crate::schedules::start(st.clone(), scale, stop));
    let st = state.clone();
    let mappings: crate::cluster::leased::Starter = Box::new(move |stop| crate::esm::start(st.clone(), stop));
    for (name, mut starter) in [("schedules", schedules), ("mappings", mappings)] {
        tasks.push(match &state.cluster {
            // In a cluster, one node at a time runs each (docs/cluster.md).
            Some(cluster) => crate::cluster::leased::start(Arc::clone(cluster), name, starter, rx.clone()),
            None => starter(rx.clone()),
        });
    }
    if let Some(cluster) = &state.cluster {
        // Provisioned concurrency: split by one node, followed by each.
        let allocator = crate::cluster::provisioned::allocator(state.clone());
        tasks.push(crate::cluster::leased::start(
            Arc::clone(cluster),
            "provisioned",
            allocator,
            rx.clone(),
        ));
        tasks.push(crate::cluster::provisioned::follow(
            state.clone(),
            Arc::clone(cluster),
            rx.clone(),
        ));
    }
    Ok(Background { stop, tasks })
}

impl Background {
    /// Tells every subsystem to stop and waits until each has.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}
