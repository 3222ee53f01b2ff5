//! What invokes functions from outside the API, started and stopped with
//! the daemon: the function URL listener and the schedule runner.

use crate::server::ServeError;
use crate::state::AppState;
use std::net::SocketAddr;
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Debug, Clone)]
pub struct UrlsSchedulesConfig {
    /// The function URL listener (`--url-listen`); `None`: no listener.
    pub url_listen: Option<SocketAddr>,
    /// Schedule time runs this many times faster than real time (tests).
    pub schedule_time_scale: f64,
}

impl Default for UrlsSchedulesConfig {
    fn default() -> Self {
        Self {
            url_listen: None,
            schedule_time_scale: 1.0,
        }
    }
}

pub struct UrlsSchedules {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// Binds the URL listener and starts the schedule runner.
pub async fn start(config: &UrlsSchedulesConfig, state: AppState) -> Result<UrlsSchedules, ServeError> {
    let (stop, rx) = watch::channel(false);
    let mut tasks = Vec::new();
    if let Some(addr) = config.url_listen {
        let t = crate::urls::listen(addr, state.clone(), rx.clone())
            .await
            .map_err(|source| ServeError::Bind { addr, source })?;
        tasks.push(t);
    }
    tasks.push(crate::schedules::start(state, config.schedule_time_scale, rx));
    Ok(UrlsSchedules { stop, tasks })
}

impl UrlsSchedules {
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}
