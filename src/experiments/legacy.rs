//! The older experiment files (`task = "fc" | "line" | "detect" | "landscape"`, sweeping
//! `act`, `loss`, `lr`, `init_std` and `reduction`): `gradlab run` converts them to the network
//! file they stand for (the preset of their task with their keys set) and says so, showing the
//! converted file; a `landscape` file is not a network and gets the equivalent commands instead.

use crate::error::{Error, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OldFile {
    task: String,
    out: Option<PathBuf>,
    data: Option<PathBuf>,
    data_seed: Option<u64>,
    #[serde(default)]
    train: OldTrain,
    #[serde(default)]
    sweep: OldSweep,
    landscape: Option<toml::Table>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct OldTrain {
    seeds: Option<usize>,
    first_seed: Option<u64>,
    max_iters: Option<usize>,
    bias_init: Option<f64>,
    per_sample_bias: Option<bool>,
    untied_conv_bias: Option<bool>,
    init: Option<PathBuf>,
    save_params: Option<PathBuf>,
    save_every: Option<usize>,
    tensorboard: Option<PathBuf>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct OldSweep {
    act: Option<Vec<String>>,
    loss: Option<Vec<String>>,
    lr: Option<Vec<f64>>,
    init_std: Option<Vec<f64>>,
    reduction: Option<Vec<String>>,
}

/// Whether a TOML text is in the older form (it has a top-level `task`).
pub fn is_old(text: &str) -> bool {
    text.parse::<toml::Table>().is_ok_and(|t| t.contains_key("task"))
}

fn path_value(p: &Path) -> toml::Value {
    toml::Value::String(p.display().to_string())
}

/// The network file an older file stands for, as TOML text with a comment saying where it came
/// from. Errors name the file and the key.
pub fn convert(path: &Path, text: &str) -> Result<String> {
    let old: OldFile = toml::from_str(text).map_err(|e| Error::data(path, e.to_string().trim().to_string()))?;
    let bad = |key: &str, msg: String| Error::data(path, format!("field `{key}`: {msg}"));
    let preset = match old.task.as_str() {
        "fc" => "fc73",
        "line" => "line",
        "detect" => "detect",
        "landscape" => return Err(landscape_commands(path, &old)),
        other => return Err(bad("task", format!("unknown task `{other}` (fc, line, detect, landscape)"))),
    };
    if old.landscape.is_some() {
        return Err(bad("landscape", "applies to task = \"landscape\" only".into()));
    }
    let fc = preset == "fc73";
    let (t, s) = (&old.train, &old.sweep);
    if !fc && (t.per_sample_bias.is_some() || s.loss.is_some()) {
        let key = if t.per_sample_bias.is_some() { "train.per_sample_bias" } else { "sweep.loss" };
        return Err(bad(key, "applies to task = \"fc\" only".into()));
    }
    if fc && t.untied_conv_bias.is_some() {
        return Err(bad("train.untied_conv_bias", "applies to task = \"line\" or \"detect\" only".into()));
    }
    let mut doc: toml::Table = super::presets::text(preset)?.parse().expect("presets parse");
    doc.remove("sweep");
    if old.data.is_some()
        && let Some(toml::Value::Table(d)) = doc.get_mut("data")
    {
        d.remove("n");
        d.remove("seed");
    }
    let mut set = |key: &str, v: toml::Value| super::lab::set_key(&mut doc, key, v).expect("preset keys exist");
    if let Some(out) = &old.out {
        set("out", path_value(out));
    }
    match &old.data {
        Some(dir) => set("data.course_dir", path_value(dir)),
        None => set("data.seed", toml::Value::Integer(old.data_seed.unwrap_or(0) as i64)),
    }
    let int = |v: usize| toml::Value::Integer(v as i64);
    for (key, v) in [("train.seeds", t.seeds), ("train.max_iters", t.max_iters), ("train.save_every", t.save_every)] {
        if let Some(v) = v {
            set(key, int(v));
        }
    }
    if let Some(v) = t.first_seed {
        set("train.first_seed", toml::Value::Integer(v as i64));
    }
    if let Some(b) = t.bias_init {
        set("init.bias", toml::Value::Float(b));
    }
    for (key, p) in [("train.init", &t.init), ("train.save_params", &t.save_params), ("train.tensorboard", &t.tensorboard)]
    {
        if let Some(p) = p {
            set(key, path_value(p));
        }
    }
    let both = |v: &str| -> Vec<(String, toml::Value)> {
        ["network.layers.0.bias", "network.layers.1.bias"].map(|k| (k.to_string(), v.into())).to_vec()
    };
    let mut fixed = vec![];
    if t.per_sample_bias == Some(true) {
        fixed.extend(both("per_sample"));
    }
    if t.untied_conv_bias == Some(true) {
        fixed.extend(both("untied"));
    }
    for (k, v) in fixed {
        set(&k, v);
    }
    // Each old axis is one key (or a joint key / a table) of the network file; one value is set,
    // several are swept, in the old order (act, loss, lr, init_std, reduction; the last fastest).
    let act_key = if fc { "network.layers.0.act" } else { "network.layers.0.act, network.layers.1.act" };
    let reduction_key = if preset == "detect" { "network.heads.0.reduction" } else { "network.reduction" };
    let mut axes: Vec<(&str, Vec<toml::Value>)> = vec![];
    let strings = |v: &Option<Vec<String>>| v.as_ref().map(|v| v.iter().map(|s| s.as_str().into()).collect());
    let floats = |v: &Option<Vec<f64>>| v.as_ref().map(|v| v.iter().map(|&x| toml::Value::Float(x)).collect());
    let losses: Option<Vec<toml::Value>> = match &s.loss {
        None => None,
        Some(v) => Some(
            v.iter()
                .map(|l| match l.as_str() {
                    "ce" => Ok(table(&[("loss", "sigmoid_ce")])),
                    "l2" => Ok(table(&[("loss", "l2"), ("output_act", "sigmoid")])),
                    other => Err(bad("sweep.loss", format!("unknown loss `{other}` (ce, l2)"))),
                })
                .collect::<Result<_>>()?,
        ),
    };
    for (key, values) in [
        (act_key, strings(&s.act)),
        ("network", losses),
        ("optim.lr", floats(&s.lr)),
        ("init.std", floats(&s.init_std)),
        (reduction_key, strings(&s.reduction)),
    ] {
        let Some(values) = values else { continue };
        match values.len() {
            0 => return Err(bad(&format!("sweep.{}", old_name(key)), "is an empty list".into())),
            1 => {
                for (k, v) in super::lab::assignments(key, &values[0]) {
                    set(&k, v);
                }
            }
            _ => axes.push((key, values)),
        }
    }
    let mut text = format!(
        "# Converted by gradlab from {} (the older `task = \"{}\"` form): the `{preset}` preset with\n# that file's keys set. Save this as a .toml file and run it instead.\n",
        path.display(),
        old.task
    );
    text.push_str(&toml::to_string(&doc).expect("a TOML table serialises"));
    if !axes.is_empty() {
        let mut sweep = toml::Table::new();
        for (key, values) in axes {
            sweep.insert(key.to_string(), toml::Value::Array(values));
        }
        let mut wrapper = toml::Table::new();
        wrapper.insert("sweep".into(), toml::Value::Table(sweep));
        text.push('\n');
        text.push_str(&toml::to_string(&wrapper).expect("a TOML table serialises"));
    }
    Ok(text)
}

fn table(pairs: &[(&str, &str)]) -> toml::Value {
    toml::Value::Table(pairs.iter().map(|(k, v)| (k.to_string(), toml::Value::from(*v))).collect())
}

/// The old sweep key a network-file key came from, for messages.
fn old_name(key: &str) -> &'static str {
    match key {
        "network" => "loss",
        "optim.lr" => "lr",
        "init.std" => "init_std",
        k if k.ends_with("reduction") => "reduction",
        _ => "act",
    }
}

/// A `task = "landscape"` file's equivalent: one `gradlab landscape` command per activation.
fn landscape_commands(path: &Path, old: &OldFile) -> Error {
    let l = old.landscape.clone().unwrap_or_default();
    let mut flags = String::new();
    for key in ["x", "y", "range", "points"] {
        if let Some(v) = l.get(key) {
            flags.push_str(&format!(" --{key} {v}"));
        }
    }
    for (key, flag) in [("w_range", "--w-range"), ("b_range", "--b-range")] {
        if let Some(toml::Value::Array(a)) = l.get(key) {
            let parts: Vec<String> = a.iter().map(|v| v.to_string()).collect();
            flags.push_str(&format!(" {flag} {}", parts.join(",")));
        }
    }
    let acts = old.sweep.act.clone().unwrap_or_else(|| vec!["sigmoid".into()]);
    let out = old.out.as_ref().map_or("landscapes".into(), |o| o.display().to_string());
    let commands: Vec<String> =
        acts.iter().map(|a| format!("  gradlab landscape --act {a}{flags} --out {out}/{a}")).collect();
    Error::data(
        path,
        format!(
            "task = \"landscape\" files are no longer run by `gradlab run`; one neuron's landscapes are these commands:\n{}",
            commands.join("\n")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_old_table1_file_becomes_the_fc73_preset_with_a_joint_loss_axis() {
        let old = "task = \"fc\"\n[train]\nseeds = 4\nbias_init = 0.2\n[sweep]\nact = [\"relu\", \"sigmoid\"]\nloss = [\"ce\", \"l2\"]\nlr = [0.5]\n";
        let text = convert(Path::new("t.toml"), old).unwrap();
        let lab = super::super::lab::parse(Path::new("t.toml"), &text).unwrap();
        let names: Vec<&str> = lab.cells.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names.len(), 4, "{names:?}");
        assert_eq!(names[1], "network.layers.0.act=relu+network.loss=l2+network.output_act=sigmoid");
        let c = &lab.cells[1];
        assert_eq!((c.opts.seeds, c.opts.optim.lr, c.opts.init.bias), (4, 0.5, 0.2));
        assert_eq!(c.file.network.output.output_act.as_deref(), Some("sigmoid"));
        assert_eq!(lab.cells[2].file.network.output.loss.as_deref(), Some("sigmoid_ce"));
    }

    #[test]
    fn an_old_cnn_file_sweeps_both_conv_activations_together() {
        let old = "task = \"detect\"\n[sweep]\nact = [\"relu\", \"tanh\"]\nreduction = [\"sum\"]\n";
        let lab = super::super::lab::parse(Path::new("d.toml"), &convert(Path::new("d.toml"), old).unwrap()).unwrap();
        assert_eq!(lab.cells.len(), 2);
        let n = &lab.cells[1].file.network;
        use crate::models::spec::Layer;
        let acts: Vec<Option<String>> = n
            .layers
            .iter()
            .map(|l| match l {
                Layer::Conv2d { act, .. } => act.clone(),
                _ => None,
            })
            .collect();
        assert_eq!(acts, [Some("tanh".to_string()), Some("tanh".to_string())]);
        assert_eq!(n.heads.as_ref().unwrap()[0].output.reduction, Some(crate::engine::Reduction::Sum));
        assert_eq!(lab.cells[1].opts.optim.lr, 0.01, "detect's learning rate from its preset");
    }

    #[test]
    fn old_files_with_bad_keys_or_a_landscape_task_get_named_errors() {
        let e = convert(Path::new("x.toml"), "task = \"line\"\n[train]\nper_sample_bias = true\n").unwrap_err();
        assert!(e.to_string().contains("train.per_sample_bias"), "{e}");
        let e = convert(Path::new("x.toml"), "task = \"fc\"\n[sweep]\nact = []\n").unwrap_err();
        assert!(e.to_string().contains("sweep.act") && e.to_string().contains("empty"), "{e}");
        let e = convert(Path::new("x.toml"), "task = \"fc\"\nbogus = 1\n").unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
        let land = "task = \"landscape\"\n[landscape]\nrange = 1.0\n[sweep]\nact = [\"leaky_relu\"]\n";
        let e = convert(Path::new("l.toml"), land).unwrap_err().to_string();
        assert!(e.contains("gradlab landscape --act leaky_relu --range 1"), "{e}");
    }
}
