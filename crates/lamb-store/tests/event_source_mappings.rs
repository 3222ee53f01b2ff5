//! Event source mappings: stored whole, replaced, listed in order, gone with
//! their function; stream checkpoints kept per shard and gone with their
//! mapping.

mod common;

use common::registry::{create, Backend};
use lamb_types::esm::{new_mapping, EventSourceMappingConfiguration, Source};
use lamb_types::ArnContext;

fn mapping(uuid: &str) -> EventSourceMappingConfiguration {
    let arn = "arn:aws:mq:us-east-1:000000000000:broker:local:b";
    let source = Source::parse(&ArnContext::default(), arn).unwrap();
    let mut m = new_mapping(
        &source,
        uuid.into(),
        arn.into(),
        "arn:aws:lambda:us-east-1:000000000000:function:f".into(),
    );
    m.batch_size = 10;
    m.maximum_batching_window_in_seconds = 1;
    m.last_modified = 1.5;
    m.state = "Enabled".into();
    m.queues = vec!["jobs".into()];
    m
}

fn round_trip_and_cascade(b: &Backend) {
    let reg = b.open();
    let reg = &*reg;
    assert!(reg.put_event_source_mapping("f", &mapping("a"), true).is_err());
    create(reg, "f", false);
    reg.put_event_source_mapping("f", &mapping("a"), true).unwrap();
    reg.put_event_source_mapping("f", &mapping("b"), true).unwrap();
    assert!(reg.put_event_source_mapping("f", &mapping("a"), true).is_err());
    let mut a = mapping("a");
    a.state = "Disabled".into();
    reg.put_event_source_mapping("f", &a, false).unwrap();
    assert!(reg.put_event_source_mapping("f", &mapping("zzz"), false).is_err());
    assert_eq!(reg.get_event_source_mapping("a").unwrap(), a);
    let uuids: Vec<String> = reg
        .list_event_source_mappings()
        .unwrap()
        .into_iter()
        .map(|m| m.uuid)
        .collect();
    assert_eq!(uuids, ["a", "b"]);
    reg.delete_event_source_mapping("b").unwrap();
    assert!(reg.delete_event_source_mapping("b").is_err());
    reg.delete_function("f", None).unwrap();
    assert!(reg.list_event_source_mappings().unwrap().is_empty());
}

fn checkpoints_per_shard_gone_with_their_mapping(b: &Backend) {
    let reg = b.open();
    let reg = &*reg;
    create(reg, "f", false);
    assert!(reg.put_esm_checkpoint("a", "shard-0", "1").is_err(), "no such mapping");
    reg.put_event_source_mapping("f", &mapping("a"), true).unwrap();
    reg.put_esm_checkpoint("a", "shard-0", "1").unwrap();
    reg.put_esm_checkpoint("a", "shard-1", "7").unwrap();
    reg.put_esm_checkpoint("a", "shard-0", "5").unwrap();
    let cps = reg.esm_checkpoints("a").unwrap();
    assert_eq!(cps.get("shard-0").map(String::as_str), Some("5"));
    assert_eq!(cps.get("shard-1").map(String::as_str), Some("7"));
    reg.set_esm_last_processing_result("a", "OK").unwrap();
    let got = reg.get_event_source_mapping("a").unwrap();
    assert_eq!(got.last_processing_result, "OK");
    assert_eq!(got.uuid, "a");
    reg.delete_event_source_mapping("a").unwrap();
    assert!(reg.esm_checkpoints("a").unwrap().is_empty());
    assert!(reg.set_esm_last_processing_result("a", "OK").is_err());
}

crate::suite!(round_trip_and_cascade, checkpoints_per_shard_gone_with_their_mapping);
