//! Event source mappings: stored whole, replaced, listed in order, gone with
//! their function.

mod common;

use common::registry::{create, open};
use lamb_store::Registry;
use lamb_types::esm::EventSourceMappingConfiguration;

fn mapping(uuid: &str) -> EventSourceMappingConfiguration {
    EventSourceMappingConfiguration {
        uuid: uuid.into(),
        batch_size: 10,
        maximum_batching_window_in_seconds: 1,
        event_source_arn: "arn:aws:mq:us-east-1:000000000000:broker:local:b".into(),
        function_arn: "arn:aws:lambda:us-east-1:000000000000:function:f".into(),
        last_modified: 1.5,
        last_processing_result: "No records processed".into(),
        state: "Enabled".into(),
        state_transition_reason: "USER_INITIATED".into(),
        queues: vec!["jobs".into()],
        source_access_configurations: vec![],
    }
}

#[test]
fn round_trip_and_cascade() {
    let (_dir, reg) = open();
    assert!(reg.put_event_source_mapping("f", &mapping("a"), true).is_err());
    create(&reg, "f", false);
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
