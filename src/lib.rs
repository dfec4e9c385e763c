//! Gazette: a self-hosted weekly newsletter. Readers sign up with double
//! opt-in; a delivery worker sends their mail from a queue in the database.

pub mod app;
pub mod config;
pub mod db;
pub mod delivery;
pub mod digest;
pub mod domain;
pub mod i18n;
pub mod inbound;
pub mod links;
pub mod mail;
pub mod maintenance;
pub mod metrics;
pub mod schedule;
pub mod staff;
pub mod subscriber_csv;
pub mod telemetry;
pub mod terminal;
pub mod web;
pub mod webhooks;
