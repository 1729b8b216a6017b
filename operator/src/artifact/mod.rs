//! Artifact and feature-profile formats shared by trainers and model servers.
