//! An issue of the newsletter: a folder of TOML files, loaded into domain types and checked.

pub mod accessibility;
pub mod diagnostic;
pub mod issue;
pub mod load;
pub mod model;
pub mod section;
pub mod topic;
pub mod when;

pub use diagnostic::{Diagnostic, Rule, Severity};
pub use issue::*;
pub use load::{CONTENT_WIDTH, Loaded, PLACEHOLDER, load_issue};
pub use topic::{Topic, TopicCatalog, TopicInfo, TopicSet};
