//! HTTP/1.1 for media: request heads, content paths, byte ranges, response planning and heads.

pub mod content_path;
pub mod file_plan;
pub mod range;
pub mod request;
pub mod response;
pub mod signed_url;
