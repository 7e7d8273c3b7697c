//! The model API's edits as plain functions: a new model from `/model/new`'s body, and an
//! update merged into a stored model (a field sent as null, or not sent, keeps its value).

use serde_json::{Map, Value as Json};

use super::PlainModel;

/// A body the model API cannot take, and the field at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditError {
    /// What is wrong, in the config file's words (`litellm_params: expected a mapping`).
    pub message: String,
    /// The field.
    pub param: String,
}

fn wrong(param: &str, what: &str) -> EditError {
    EditError {
        message: format!("{param}: {what}"),
        param: param.to_owned(),
    }
}

/// A model id sent as a string or a number.
pub fn id_of(v: &Json) -> Option<String> {
    match v {
        Json::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn mapping(body: &Map<String, Json>, field: &str) -> Result<Option<Map<String, Json>>, EditError> {
    match body.get(field) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Object(m)) => Ok(Some(m.clone())),
        Some(_) => Err(wrong(field, "expected a mapping")),
    }
}

fn name(body: &Map<String, Json>) -> Result<Option<String>, EditError> {
    match body.get("model_name") {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        Some(Json::String(_)) => Err(wrong("model_name", "missing field")),
        Some(_) => Err(wrong("model_name", "expected a string")),
    }
}

/// The model `/model/new` asks for: `model_name`, `litellm_params` and `model_info` (whose
/// `id`, when given, is kept; `new_id` makes one otherwise).
pub fn new_model(
    body: &Map<String, Json>,
    new_id: impl FnOnce() -> String,
) -> Result<PlainModel, EditError> {
    let model_name = name(body)?.ok_or_else(|| wrong("model_name", "missing field"))?;
    let litellm_params =
        mapping(body, "litellm_params")?.ok_or_else(|| wrong("litellm_params", "missing field"))?;
    let mut model_info = mapping(body, "model_info")?.unwrap_or_default();
    let id = match model_info.remove("id") {
        None | Some(Json::Null) => new_id(),
        Some(v) => id_of(&v).ok_or_else(|| wrong("model_info.id", "expected a string"))?,
    };
    model_info.remove("db_model");
    Ok(PlainModel {
        id,
        model_name,
        litellm_params,
        model_info,
    })
}

/// `model` with `patch` applied: a new `model_name`, and each `litellm_params` and
/// `model_info` key that is sent with a value (`id` and `db_model` are not editable).
pub fn update_model(
    mut model: PlainModel,
    patch: &Map<String, Json>,
) -> Result<PlainModel, EditError> {
    if let Some(n) = name(patch)? {
        model.model_name = n;
    }
    for (k, v) in mapping(patch, "litellm_params")?.unwrap_or_default() {
        if !v.is_null() {
            model.litellm_params.insert(k, v);
        }
    }
    for (k, v) in mapping(patch, "model_info")?.unwrap_or_default() {
        if !v.is_null() && k != "id" && k != "db_model" {
            model.model_info.insert(k, v);
        }
    }
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: Json) -> Map<String, Json> {
        match v {
            Json::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn a_new_model_keeps_its_given_id_or_gets_one() {
        let given = new_model(
            &body(json!({"model_name": "m", "litellm_params": {"model": "openai/x"}, "model_info": {"id": "mine", "mode": "chat"}})),
            || "made".into(),
        )
        .unwrap();
        assert_eq!(given.id, "mine");
        assert_eq!(given.model_info, body(json!({"mode": "chat"})));
        let made = new_model(
            &body(json!({"model_name": "m", "litellm_params": {"model": "openai/x"}})),
            || "made".into(),
        )
        .unwrap();
        assert_eq!(made.id, "made");
    }

    #[test]
    fn a_new_model_names_the_missing_or_mistyped_field() {
        let err = |v: Json| new_model(&body(v), String::new).unwrap_err();
        assert_eq!(
            err(json!({"litellm_params": {}})).message,
            "model_name: missing field"
        );
        assert_eq!(err(json!({"model_name": "m"})).param, "litellm_params");
        assert_eq!(
            err(json!({"model_name": "m", "litellm_params": "openai/x"})).message,
            "litellm_params: expected a mapping"
        );
        assert_eq!(
            err(json!({"model_name": 3, "litellm_params": {}})).param,
            "model_name"
        );
        assert_eq!(
            err(json!({"model_name": "m", "litellm_params": {}, "model_info": {"id": []}})).param,
            "model_info.id"
        );
    }

    #[test]
    fn an_update_changes_what_it_sends_and_keeps_the_rest() {
        let stored = new_model(
            &body(json!({"model_name": "m", "litellm_params": {"model": "openai/x", "api_key": "sk-1", "rpm": 5}, "model_info": {"mode": "chat"}})),
            || "id-1".into(),
        )
        .unwrap();
        let updated = update_model(
            stored,
            &body(json!({"model_name": "n", "litellm_params": {"rpm": 9, "api_key": null}, "model_info": {"id": "other", "base_model": "gpt-4o"}})),
        )
        .unwrap();
        assert_eq!(updated.id, "id-1");
        assert_eq!(updated.model_name, "n");
        assert_eq!(
            Json::Object(updated.litellm_params),
            json!({"model": "openai/x", "api_key": "sk-1", "rpm": 9})
        );
        assert_eq!(
            Json::Object(updated.model_info),
            json!({"mode": "chat", "base_model": "gpt-4o"})
        );
    }
}
