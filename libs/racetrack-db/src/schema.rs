// Mirrors migrations/{postgres,sqlite}; both backends share this one schema.

diesel::table! {
    auth_user (id) {
        id -> Integer,
        username -> Text,
        password -> Text,
        email -> Text,
        first_name -> Text,
        last_name -> Text,
        is_active -> Bool,
        is_staff -> Bool,
        is_superuser -> Bool,
        last_login -> Nullable<Timestamp>,
        date_joined -> Timestamp,
    }
}

diesel::table! {
    registry_fatmanfamily (id) {
        id -> Text,
        name -> Text,
    }
}

diesel::table! {
    registry_fatman (id) {
        id -> Text,
        family_id -> Text,
        name -> Text,
        version -> Text,
        status -> Text,
        create_time -> Timestamp,
        update_time -> Timestamp,
        manifest -> Nullable<Text>,
        internal_name -> Nullable<Text>,
        error -> Nullable<Text>,
        image_tag -> Nullable<Text>,
        deployed_by -> Nullable<Text>,
        last_call_time -> Nullable<Timestamp>,
        infrastructure_target -> Nullable<Text>,
        /// Set by the lifecycle supervisor (migration 0002); not part of [`crate::models::Fatman`]
        /// so lifecycle's full-row writes never touch it.
        last_check_time -> Nullable<Timestamp>,
        /// The normalised manifest (JSON) the code reads, next to `manifest`, the user's YAML
        /// (migration 0005); written and read by `repo::fatmen`'s manifest functions only.
        manifest_json -> Nullable<Text>,
    }
}

diesel::table! {
    registry_deployment (id) {
        id -> Text,
        status -> Text,
        create_time -> Timestamp,
        update_time -> Timestamp,
        manifest -> Text,
        fatman_name -> Text,
        fatman_version -> Text,
        error -> Nullable<Text>,
        deployed_by -> Nullable<Text>,
        build_logs -> Nullable<Text>,
        phase -> Nullable<Text>,
        image_name -> Nullable<Text>,
        infrastructure_target -> Nullable<Text>,
    }
}

diesel::table! {
    registry_esc (id) {
        id -> Text,
        name -> Text,
    }
}

diesel::table! {
    registry_publicendpointrequest (id) {
        id -> Text,
        fatman_id -> Text,
        endpoint -> Text,
        active -> Bool,
    }
}

diesel::table! {
    registry_trashfatman (id) {
        id -> Text,
        name -> Text,
        version -> Text,
        status -> Text,
        create_time -> Timestamp,
        update_time -> Timestamp,
        manifest -> Nullable<Text>,
        internal_name -> Nullable<Text>,
        error -> Nullable<Text>,
        image_tag -> Nullable<Text>,
        deployed_by -> Nullable<Text>,
        last_call_time -> Nullable<Timestamp>,
        infrastructure_target -> Nullable<Text>,
        delete_time -> Timestamp,
        age_days -> Double,
    }
}

diesel::table! {
    registry_auditlogevent (id) {
        id -> Text,
        version -> Integer,
        timestamp -> Timestamp,
        event_type -> Text,
        properties -> Nullable<Text>,
        username_executor -> Nullable<Text>,
        username_subject -> Nullable<Text>,
        fatman_name -> Nullable<Text>,
        fatman_version -> Nullable<Text>,
    }
}

diesel::table! {
    registry_authsubject (id) {
        id -> Text,
        user_id -> Nullable<Integer>,
        esc_id -> Nullable<Text>,
        fatman_family_id -> Nullable<Text>,
        expiry_time -> Nullable<Timestamp>,
        active -> Bool,
        /// A Racetrack service's subject (migration 0003).
        service_name -> Nullable<Text>,
    }
}

diesel::table! {
    registry_authtoken (id) {
        id -> Text,
        auth_subject_id -> Text,
        token_hash -> Text,
        public_seed -> Nullable<Text>,
        label -> Text,
        create_time -> Timestamp,
        expiry_time -> Nullable<Timestamp>,
        last_use_time -> Nullable<Timestamp>,
    }
}

diesel::table! {
    registry_authresourcepermission (id) {
        id -> BigInt,
        auth_subject_id -> Text,
        scope -> Text,
        fatman_family_id -> Nullable<Text>,
        fatman_id -> Nullable<Text>,
        endpoint -> Nullable<Text>,
    }
}

diesel::table! {
    racetrack_lease (name) {
        name -> Text,
        holder -> Text,
        acquire_time -> Timestamp,
        expire_time -> Timestamp,
    }
}

diesel::joinable!(registry_fatman -> registry_fatmanfamily (family_id));
diesel::joinable!(registry_publicendpointrequest -> registry_fatman (fatman_id));
diesel::joinable!(registry_authtoken -> registry_authsubject (auth_subject_id));
diesel::joinable!(registry_authresourcepermission -> registry_authsubject (auth_subject_id));

diesel::allow_tables_to_appear_in_same_query!(
    auth_user,
    registry_fatmanfamily,
    registry_fatman,
    registry_deployment,
    registry_esc,
    registry_publicendpointrequest,
    registry_trashfatman,
    registry_auditlogevent,
    registry_authsubject,
    registry_authtoken,
    registry_authresourcepermission,
    racetrack_lease,
);
