//! cybs3-operator: reconciles `Cybs3` resources into a StatefulSet (one pod, one volume
//! per drive) and its companions. Pure functions compute the objects (`desired`) and the
//! status (`status`) from the spec and what the API server returns; `reconcile` is the
//! thin layer that talks to it.

pub mod config;
pub mod crd;
pub mod desired;
pub mod error;
pub mod reconcile;
pub mod spec;
pub mod status;
