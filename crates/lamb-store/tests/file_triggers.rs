//! File triggers: stored, listed, removed, gone with their function, kept
//! across a reopen.

mod common;

use common::registry::{create, Backend};
use lamb_store::NewFileTrigger;

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

fn round_trip_and_cascade(b: &Backend) {
    let reg = b.open();
    assert!(reg.create_file_trigger(trigger("nope")).is_err());
    create(&*reg, "a", false);
    create(&*reg, "b", false);
    let ta = reg.create_file_trigger(trigger("a")).unwrap();
    let tb = reg.create_file_trigger(trigger("b")).unwrap();
    assert_eq!(ta.suffix, ".ppm");
    assert_eq!(reg.list_file_triggers().unwrap().len(), 2);
    reg.delete_file_trigger(&ta.id).unwrap();
    assert!(reg.delete_file_trigger(&ta.id).is_err());
    let reg = b.open();
    assert_eq!(reg.list_file_triggers().unwrap(), vec![tb]);
    reg.delete_function("b", None).unwrap();
    assert!(reg.list_file_triggers().unwrap().is_empty());
}

crate::suite!(round_trip_and_cascade);
