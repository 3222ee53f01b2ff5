//! The RabbitMQ brokers the daemon was told about (`lamb serve --rabbitmq
//! NAME=amqp://USER:PASS@HOST:PORT[/VHOST]`), by name: configuration the
//! shared state holds, apart from the pollers that use it.

use percent_encoding::percent_decode_str;
use std::collections::BTreeMap;

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
