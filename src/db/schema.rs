//! The database schema, shared by the SQLite and PostgreSQL trees in `migrations/`.

diesel::table! {
    llmgate_keys (token) {
        token -> Text,
        key_name -> Text,
        key_alias -> Nullable<Text>,
        spend -> Double,
        max_budget -> Nullable<Double>,
        budget_duration -> Nullable<Text>,
        budget_reset_at -> Nullable<Timestamp>,
        expires -> Nullable<Timestamp>,
        models -> Text,
        aliases -> Text,
        config -> Text,
        metadata -> Text,
        model_max_budget -> Text,
        model_rpm_limit -> Text,
        model_tpm_limit -> Text,
        tpm_limit -> Nullable<BigInt>,
        rpm_limit -> Nullable<BigInt>,
        max_parallel_requests -> Nullable<BigInt>,
        user_id -> Nullable<Text>,
        team_id -> Nullable<Text>,
        tags -> Text,
        blocked -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        allowed_cache_controls -> Text,
    }
}

diesel::table! {
    llmgate_key_model_spend (token, model) {
        token -> Text,
        model -> Text,
        spend -> Double,
    }
}

diesel::table! {
    llmgate_spend_logs (request_id) {
        request_id -> Text,
        api_key -> Text,
        model -> Text,
        model_group -> Text,
        model_id -> Text,
        api_base -> Text,
        provider -> Text,
        prompt_tokens -> BigInt,
        completion_tokens -> BigInt,
        total_tokens -> BigInt,
        spend -> Double,
        start_time -> Timestamp,
        end_time -> Timestamp,
        status -> Text,
        cache_hit -> Bool,
        user_id -> Nullable<Text>,
        metadata -> Text,
        team_id -> Nullable<Text>,
        end_user -> Nullable<Text>,
        request_tags -> Text,
    }
}

diesel::table! {
    llmgate_proxy_spend (id) {
        id -> Integer,
        spend -> Double,
        budget_reset_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    llmgate_audit_logs (id) {
        id -> Text,
        updated_at -> Timestamp,
        changed_by -> Text,
        changed_by_api_key -> Text,
        action -> Text,
        table_name -> Text,
        object_id -> Text,
        before_value -> Nullable<Text>,
        updated_values -> Nullable<Text>,
    }
}

diesel::table! {
    llmgate_spend_journal (journal_id) {
        journal_id -> Text,
        applied_seq -> BigInt,
    }
}

diesel::table! {
    llmgate_entities (kind, scope, id) {
        kind -> Text,
        scope -> Text,
        id -> Text,
        alias -> Nullable<Text>,
        email -> Nullable<Text>,
        role -> Nullable<Text>,
        models -> Text,
        metadata -> Text,
        details -> Text,
        spend -> Double,
        max_budget -> Nullable<Double>,
        budget_duration -> Nullable<Text>,
        budget_reset_at -> Nullable<Timestamp>,
        tpm_limit -> Nullable<BigInt>,
        rpm_limit -> Nullable<BigInt>,
        max_parallel_requests -> Nullable<BigInt>,
        blocked -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    llmgate_daily_spend (kind, entity_id, date, api_key, model, model_group, provider) {
        kind -> Text,
        entity_id -> Text,
        date -> Text,
        api_key -> Text,
        model -> Text,
        model_group -> Text,
        provider -> Text,
        prompt_tokens -> BigInt,
        completion_tokens -> BigInt,
        spend -> Double,
        api_requests -> BigInt,
        successful_requests -> BigInt,
        failed_requests -> BigInt,
    }
}

diesel::table! {
    llmgate_managed_objects (id) {
        id -> Text,
        kind -> Text,
        deployment_id -> Text,
        owner -> Text,
        purpose -> Nullable<Text>,
        input_file_id -> Nullable<Text>,
        created_at -> Timestamp,
        spend -> Nullable<Double>,
        charged_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    llmgate_proxy_models (id) {
        id -> Text,
        model_name -> Text,
        litellm_params -> Text,
        model_info -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        created_by -> Text,
        updated_by -> Text,
    }
}
