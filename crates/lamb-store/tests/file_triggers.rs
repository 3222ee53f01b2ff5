//! File triggers: stored, listed, removed, gone with their function, kept
//! across a reopen.

mod common;

use common::registry::{create, open};
use lamb_store::{NewFileTrigger, Registry, SqliteRegistry};
use lamb_types::ArnContext;

fn trigger(function: &str) -> NewFileTrigger {
    NewFileTrigger {
        function: function.into(),
        qualifier: "$LATEST".into(),
        filesystem: "photos".into(),
        dir: "in".into(),
        prefix: "".into(),
        suffix: ".ppm".into(),
    }
}

#[test]
fn round_trip_and_cascade() {
    let (dir, reg) = open();
    assert!(reg.create_file_trigger(trigger("nope")).is_err());
    create(&reg, "a", false);
    create(&reg, "b", false);
    let ta = reg.create_file_trigger(trigger("a")).unwrap();
    let tb = reg.create_file_trigger(trigger("b")).unwrap();
    assert_eq!(ta.suffix, ".ppm");
    assert_eq!(reg.list_file_triggers().unwrap().len(), 2);
    reg.delete_file_trigger(&ta.id).unwrap();
    assert!(reg.delete_file_trigger(&ta.id).is_err());
    drop(reg);
    let reg = SqliteRegistry::open_in(dir.path(), ArnContext::default()).unwrap();
    assert_eq!(reg.list_file_triggers().unwrap(), vec![tb]);
    reg.delete_function("b", None).unwrap();
    assert!(reg.list_file_triggers().unwrap().is_empty());
}
