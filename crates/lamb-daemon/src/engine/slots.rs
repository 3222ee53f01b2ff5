//! Uid slots (uid = `UID_BASE` + slot; with `--userns`, a range per slot):
//! a slot is never given while its sandbox lives, and a freed slot goes
//! back first to the function that had it.
//!
//! Why: whatever a sandbox leaves on the host (a file in a served directory)
//! is owned by its uid, and a local user who could act as that uid would act
//! as the next sandbox that gets it. Served directories are `nosuid` on the
//! host (`filesystems::host_mount`), so no planted set-uid file runs as it;
//! keeping uids with their function besides means another function's
//! sandbox gets a used uid only once [`FRESH_SLOTS`] are all taken, and then
//! the one freed longest ago.

use std::collections::HashMap;

/// Slots handed out fresh before a freed slot of another function is used:
/// about as many sandboxes as memory lets live at once on a large host.
pub const FRESH_SLOTS: u32 = 1000;

#[derive(Debug, Default)]
pub struct Slots {
    /// Free slots, the longest free first.
    free: Vec<u32>,
    /// The function each slot was last given to.
    owner: HashMap<u32, String>,
    next: u32,
}

impl Slots {
    pub fn alloc(&mut self, function: &str) -> u32 {
        let own = self
            .free
            .iter()
            .rposition(|s| self.owner.get(s).is_some_and(|f| f == function));
        let slot = match own {
            Some(i) => self.free.remove(i),
            None if self.next < FRESH_SLOTS || self.free.is_empty() => {
                self.next += 1;
                self.next - 1
            }
            None => self.free.remove(0),
        };
        self.owner.insert(slot, function.to_owned());
        slot
    }

    /// Called once the slot's sandbox is gone.
    pub fn free(&mut self, slot: u32) {
        debug_assert!(!self.free.contains(&slot), "slot {slot} freed twice");
        self.free.push(slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_freed_slot_goes_back_to_its_function_first() {
        let mut s = Slots::default();
        let a = s.alloc("a");
        s.free(a);
        let b = s.alloc("b");
        assert_ne!(a, b, "b got the uid a's sandbox had");
        assert_eq!(s.alloc("a"), a);
        s.free(b);
        assert_eq!(s.alloc("b"), b);
    }

    #[test]
    fn live_slots_are_never_shared() {
        let mut s = Slots::default();
        let mut live = std::collections::HashSet::new();
        for i in 0..3 * FRESH_SLOTS {
            let f = format!("f{}", i % 7);
            assert!(live.insert(s.alloc(&f)));
            if i % 3 == 0 {
                let gone = *live.iter().next().unwrap();
                live.remove(&gone);
                s.free(gone);
            }
        }
    }

    #[test]
    fn past_the_fresh_slots_the_longest_free_is_reused() {
        let mut s = Slots::default();
        let all: Vec<u32> = (0..FRESH_SLOTS).map(|_| s.alloc("a")).collect();
        s.free(all[5]);
        s.free(all[2]);
        assert_eq!(s.alloc("b"), all[5]);
        assert_eq!(s.alloc("b"), all[2]);
        assert_eq!(s.alloc("b"), FRESH_SLOTS);
    }
}
