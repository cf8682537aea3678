//! Generated gRPC code for Racetrack's internal contracts (`proto/`), and the conversions
//! between their messages and racetrack-model's types ([`manifest`]).

pub mod manifest;

pub mod dashboard {
    #![allow(clippy::all)]
    tonic::include_proto!("racetrack.dashboard.v1");
}

pub mod image_builder {
    #![allow(clippy::all)]
    tonic::include_proto!("racetrack.image_builder.v1");
}

pub mod lifecycle {
    #![allow(clippy::all)]
    tonic::include_proto!("racetrack.lifecycle.v1");
}

pub mod supervisor {
    #![allow(clippy::all)]
    tonic::include_proto!("racetrack.supervisor.v1");

    impl From<racetrack_model::FatmanStatus> for FatmanStatus {
        fn from(s: racetrack_model::FatmanStatus) -> Self {
            use racetrack_model::FatmanStatus as M;
            match s {
                M::Created => FatmanStatus::Created,
                M::Running => FatmanStatus::Running,
                M::Error => FatmanStatus::Error,
                M::Orphaned => FatmanStatus::Orphaned,
                M::Lost => FatmanStatus::Lost,
            }
        }
    }

    impl TryFrom<FatmanStatus> for racetrack_model::FatmanStatus {
        type Error = &'static str;
        fn try_from(s: FatmanStatus) -> Result<Self, &'static str> {
            use racetrack_model::FatmanStatus as M;
            Ok(match s {
                FatmanStatus::Unspecified => return Err("fatman status unspecified"),
                FatmanStatus::Created => M::Created,
                FatmanStatus::Running => M::Running,
                FatmanStatus::Error => M::Error,
                FatmanStatus::Orphaned => M::Orphaned,
                FatmanStatus::Lost => M::Lost,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::supervisor::FatmanStatus;

    #[test]
    fn fatman_statuses_map_both_ways() {
        for status in racetrack_model::FatmanStatus::ALL {
            let wire = FatmanStatus::from(*status);
            assert_ne!(wire, FatmanStatus::Unspecified);
            assert_eq!(racetrack_model::FatmanStatus::try_from(wire), Ok(*status));
        }
        assert!(racetrack_model::FatmanStatus::try_from(FatmanStatus::Unspecified).is_err());
    }
}
