//! Distribution jobs (issue 16, the seed's job objects): an operator or tenant asks for a
//! content on many edges; the job record ([`model`]) is durable in the registry ([`store`]);
//! the leader's [`scheduler`] runs the cascade [`planner`] (storage feeds `fanout` targets,
//! each finished target feeds up to `fanout` more, slow sources are switched away from);
//! edges poll for what to do and report back ([`agent`]), with transfer progress kept as soft
//! state ([`progress`]); the [`notify`] thread delivers webhooks; [`api`] serves `/v1/jobs`.

pub mod agent;
pub mod api;
pub mod model;
pub mod notify;
pub mod planner;
pub mod progress;
pub mod scheduler;
pub mod store;
