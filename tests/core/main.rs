//! Core building blocks through their public interfaces, as a BFF other than web uses them.

mod auth_middleware;
mod cache;
mod connections;
mod edge_headers;
mod resilience;
mod shutdown;
mod skeleton;
