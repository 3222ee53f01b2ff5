//! Records of file triggers: a directory of a served file system whose new
//! files invoke a function asynchronously (`lamb trigger add`).

/// A file trigger to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFileTrigger {
    pub function: String,
    /// `$LATEST`, a version number or an alias.
    pub qualifier: String,
    /// The served file system's name (the event's bucket).
    pub filesystem: String,
    /// The watched directory, relative to the file system's root; empty for
    /// the root itself.
    pub dir: String,
    /// Only keys (paths relative to the root) starting with this.
    pub prefix: String,
    /// Only keys ending with this.
    pub suffix: String,
}

/// A stored file trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileTriggerRecord {
    pub id: String,
    pub function: String,
    pub qualifier: String,
    pub filesystem: String,
    pub dir: String,
    pub prefix: String,
    pub suffix: String,
    pub created_ms: i64,
}
