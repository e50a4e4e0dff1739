//! The older experiment files (`task = "fc" | "line" | "detect" | "landscape"`, sweeping `act`,
//! `loss`, `lr`, `init_std` and `reduction`): `gradlab run` converts them to the network file
//! they stand for (the preset of their task with their keys set) and says so, showing the
//! converted file; a `landscape` file is not a network and is pointed to `gradlab landscape`.

use crate::error::{Error, Result};
use std::path::Path;

/// Whether a TOML text is in the older form (it has a top-level `task`).
pub fn is_old(text: &str) -> bool {
    text.parse::<toml::Table>().is_ok_and(|t| t.contains_key("task"))
}

/// The old keys that carry over one to one, with their network-file keys.
const MOVED: &[(&str, &str)] = &[
    ("out", "out"),
    ("data", "data.course_dir"),
    ("data_seed", "data.seed"),
    ("train.seeds", "train.seeds"),
    ("train.first_seed", "train.first_seed"),
    ("train.max_iters", "train.max_iters"),
    ("train.bias_init", "init.bias"),
    ("train.init", "train.init"),
    ("train.save_params", "train.save_params"),
    ("train.save_every", "train.save_every"),
    ("train.tensorboard", "train.tensorboard"),
];

/// The network file an older file stands for, as TOML text with a comment saying where it came
/// from. Errors name the file and the old key; the converted file is checked by the one
/// validator when it is parsed.
pub fn convert(path: &Path, text: &str) -> Result<String> {
    let bad = |key: &str, msg: &str| Error::data(path, format!("field `{key}`: {msg}"));
    let old: toml::Table = text.parse().map_err(|e: toml::de::Error| Error::data(path, e.to_string().trim()))?;
    let task = old.get("task").and_then(|t| t.as_str()).unwrap_or_default();
    let (preset, fc) = match task {
        "fc" => ("fc73", true),
        "line" | "detect" => (task, false),
        "landscape" => {
            return Err(bad(
                "task",
                "a landscape is one neuron, not a network: run `gradlab landscape --act A [--x X --y Y --range R --points N]` for each activation",
            ));
        }
        other => return Err(bad("task", &format!("unknown task `{other}` (fc, line, detect, landscape)"))),
    };
    let mut doc: toml::Table = super::presets::text(preset)?.parse().expect("presets parse");
    doc.remove("sweep");
    if old.contains_key("data")
        && let Some(toml::Value::Table(d)) = doc.get_mut("data")
    {
        d.remove("n");
        d.remove("seed");
    }
    let act = if fc { "network.layers.0.act" } else { "network.layers.0.act, network.layers.1.act" };
    let reduction = if preset == "detect" { "network.heads.0.reduction" } else { "network.reduction" };
    let swept =
        [("act", act), ("loss", "network"), ("lr", "optim.lr"), ("init_std", "init.std"), ("reduction", reduction)];
    let mut sets: Vec<(String, toml::Value)> = vec![];
    let mut sweep = toml::Table::new();
    for (section, value) in &old {
        let entries: Vec<(String, &toml::Value)> = match (section.as_str(), value) {
            ("task", _) => continue,
            ("train" | "sweep", toml::Value::Table(t)) => {
                t.iter().map(|(k, v)| (format!("{section}.{k}"), v)).collect()
            }
            _ => vec![(section.clone(), value)],
        };
        for (key, value) in entries {
            let bias = match key.as_str() {
                "train.per_sample_bias" if !fc => return Err(bad(&key, "applies to task = \"fc\" only")),
                "train.untied_conv_bias" if fc => {
                    return Err(bad(&key, "applies to task = \"line\" or \"detect\" only"));
                }
                "train.per_sample_bias" => Some("per_sample"),
                "train.untied_conv_bias" => Some("untied"),
                _ => None,
            };
            if let Some(kind) = bias {
                if value.as_bool() == Some(true) {
                    sets.extend(["network.layers.0.bias", "network.layers.1.bias"].map(|k| (k.into(), kind.into())));
                }
            } else if let Some((_, new)) = MOVED.iter().find(|(k, _)| *k == key) {
                sets.push((new.to_string(), value.clone()));
            } else if let Some(&(name, new)) = swept.iter().find(|(k, _)| key == format!("sweep.{k}")) {
                let Some(values) = value.as_array() else { return Err(bad(&key, "must be a list")) };
                if name == "loss" && !fc {
                    return Err(bad(&key, "applies to task = \"fc\" only"));
                }
                let values: Vec<toml::Value> = values
                    .iter()
                    .map(|v| match (name, v.as_str()) {
                        ("loss", Some("ce")) => Ok(table(&[("loss", "sigmoid_ce")])),
                        ("loss", Some("l2")) => Ok(table(&[("loss", "l2"), ("output_act", "sigmoid")])),
                        ("loss", l) => Err(bad(&key, &format!("unknown loss `{}` (ce, l2)", l.unwrap_or("?")))),
                        _ => Ok(v.clone()),
                    })
                    .collect::<Result<_>>()?;
                match values.as_slice() {
                    [] => return Err(bad(&key, "is an empty list")),
                    [one] => sets.extend(super::lab::assignments(new, one)),
                    _ => drop(sweep.insert(new.to_string(), toml::Value::Array(values))),
                }
            } else {
                return Err(Error::data(path, format!("unknown field `{key}` in an older `task = \"{task}\"` file")));
            }
        }
    }
    for (key, value) in sets {
        super::lab::set_key(&mut doc, &key, value).expect("preset keys exist");
    }
    let mut text = format!(
        "# Converted by gradlab from {} (the older `task = \"{task}\"` form): the `{preset}` preset with\n# that file's keys set. Save this as a .toml file and run it instead.\n",
        path.display()
    );
    // Written as the presets are: the layers and heads one inline table a line.
    let lists: Vec<(String, toml::Value)> =
        ["layers", "heads"].iter().filter_map(|k| doc.get_mut("network")?.as_table_mut()?.remove_entry(*k)).collect();
    let body = toml::to_string(&doc).expect("a TOML table serialises");
    let lists: String = lists
        .iter()
        .map(|(k, v)| {
            let items: Vec<String> =
                v.as_array().into_iter().flatten().map(|t| format!("  {},\n", inline(t))).collect();
            format!("{k} = [\n{}]\n", items.concat())
        })
        .collect();
    text.push_str(&body.replacen("[network]\n", &format!("[network]\n{lists}"), 1));
    if !sweep.is_empty() {
        // The old order: act, loss, lr, init_std, reduction (the last fastest), as in the table.
        text.push_str("\n[sweep]\n");
        for (_, key) in swept {
            if let Some(toml::Value::Array(values)) = sweep.get(key) {
                let values: Vec<String> = values.iter().map(inline).collect();
                text.push_str(&format!("\"{key}\" = [{}]\n", values.join(", ")));
            }
        }
    }
    Ok(text)
}

/// A value as it is written inline: tables as `{ k = v, … }`.
fn inline(v: &toml::Value) -> String {
    match v {
        toml::Value::Table(t) => {
            let parts: Vec<String> = t.iter().map(|(k, v)| format!("{k} = {}", inline(v))).collect();
            format!("{{ {} }}", parts.join(", "))
        }
        other => other.to_string(),
    }
}

fn table(pairs: &[(&str, &str)]) -> toml::Value {
    toml::Value::Table(pairs.iter().map(|(k, v)| (k.to_string(), toml::Value::from(*v))).collect())
}
