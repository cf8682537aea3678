//! Generated gRPC code for Racetrack's internal contracts (`proto/`), and the conversions
//! between their messages and racetrack-model's types ([`manifest`]).

pub mod manifest;

pub mod image_builder {
    #![allow(clippy::all)]
    tonic::include_proto!("racetrack.image_builder.v1");
}

pub mod lifecycle {
    #![allow(clippy::all)]
    tonic::include_proto!("racetrack.lifecycle.v1");
}
