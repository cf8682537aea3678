//! The graph page: users, ESCs, families and fatmen, and who may call whom. The drawing is
//! `static/graph.js` over the vendored vis-network; the server sends the graph with each node's
//! neighbours already computed, and renders a plain list of the nodes as a keyboard (and test)
//! friendly twin of the canvas.

use std::collections::{BTreeMap, BTreeSet};

use actix_web::{web, HttpResponse};
use maud::{html, Markup};
use racetrack_proto::dashboard::{Empty, Graph};
use serde_json::json;

use crate::layout::{self, Alert};
use crate::pages::accounts::viewer;
use crate::session::{self, SignedIn};
use crate::State;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/graph", web::get().to(graph_page));
}

/// Each node's direct neighbours, whichever way the edge points (the node itself excluded).
/// Edges naming a node the graph lacks are ignored.
pub fn neighbours(graph: &Graph) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = graph
        .nodes
        .iter()
        .map(|n| (n.id.clone(), BTreeSet::new()))
        .collect();
    for e in &graph.edges {
        if e.from == e.to || !out.contains_key(&e.from) || !out.contains_key(&e.to) {
            continue;
        }
        if let Some(set) = out.get_mut(&e.from) {
            set.insert(e.to.clone());
        }
        if let Some(set) = out.get_mut(&e.to) {
            set.insert(e.from.clone());
        }
    }
    out
}

/// The ids shown when `selected` is clicked: it and its neighbours, sorted.
pub fn visible_after_click(graph: &Graph, selected: &str) -> Vec<String> {
    let mut all = neighbours(graph);
    match all.remove(selected) {
        Some(mut set) => {
            set.insert(selected.to_string());
            set.into_iter().collect()
        }
        None => Vec::new(),
    }
}

/// The data `graph.js` draws (edges to unknown nodes left out).
pub fn graph_json(graph: &Graph) -> serde_json::Value {
    let near = neighbours(graph);
    let nodes: Vec<serde_json::Value> = graph
        .nodes
        .iter()
        .map(|n| {
            let details: BTreeMap<&String, &String> = n.details.iter().collect();
            json!({ "id": n.id, "kind": n.kind, "label": n.label, "details": details })
        })
        .collect();
    let edges: Vec<serde_json::Value> = graph
        .edges
        .iter()
        .filter(|e| near.contains_key(&e.from) && near.contains_key(&e.to))
        .map(|e| json!({ "from": e.from, "to": e.to, "kind": e.kind }))
        .collect();
    json!({ "nodes": nodes, "edges": edges, "neighbours": near })
}

async fn graph_page(state: State, user: SignedIn) -> HttpResponse {
    let mut alerts: Vec<Alert> = session::take_flash(&user.session)
        .into_iter()
        .map(Alert::from)
        .collect();
    let graph = state
        .lifecycle
        .call(Some(&user.token), Empty {}, |mut c, r| async move {
            c.get_graph(r).await
        })
        .await
        .unwrap_or_else(|e| {
            alerts.push(Alert::Error(e.to_string()));
            Graph::default()
        });
    let csrf = user.csrf();
    layout::page(
        &state.ui,
        Some(&viewer(&user, &csrf)),
        "Graph",
        &alerts,
        render(&graph),
    )
}

/// The page body (tested without a server).
pub fn render(graph: &Graph) -> Markup {
    let mut nodes: Vec<_> = graph.nodes.iter().collect();
    nodes.sort_by(|a, b| a.id.cmp(&b.id));
    let all_ids: Vec<&str> = nodes.iter().map(|n| n.id.as_str()).collect();
    html! {
        link rel="stylesheet" href="/dashboard/static/vendor/vis-network/vis-network.css";
        section.card {
            h1 { "Graph" }
            p.muted {
                "Users, external service consumers (ESCs), fatman families and fatmen; arrows point "
                "from who may call (or owns) to what. Click a node to see it with its neighbours."
            }
            p {
                label.inline { input #graph-physics type="checkbox" checked; " Enable physics" }
                " "
                button #graph-reset.secondary type="button" { "Show all" }
            }
            div #graph.graph {}
            div #graph-details.card aria-live="polite" {
                p.muted { "No node selected." }
            }
            details open {
                summary { "Nodes (" (nodes.len()) ")" }
                ul #graph-nodes {
                    @for n in &nodes {
                        li data-node-id=(n.id) data-kind=(n.kind) tabindex="0" role="button" {
                            span.pill { (n.kind) } (n.label)
                        }
                    }
                }
                h2 { "Visible nodes" }
                pre #graph-visible { (all_ids.join("\n")) }
            }
        }
        (layout::json_data("graph-data", &graph_json(graph)))
        script src="/dashboard/static/vendor/vis-network/vis-network.min.js" defer {}
        script src="/dashboard/static/graph.js" defer {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use racetrack_proto::dashboard::{GraphEdge, GraphNode};

    fn node(id: &str, kind: &str) -> GraphNode {
        GraphNode {
            id: id.into(),
            kind: kind.into(),
            label: id.split(':').nth(1).unwrap_or(id).into(),
            details: [("owner".to_string(), "alice</script>".to_string())].into(),
        }
    }

    fn edge(from: &str, to: &str, kind: &str) -> GraphEdge {
        GraphEdge {
            from: from.into(),
            to: to.into(),
            kind: kind.into(),
        }
    }

    fn sample() -> Graph {
        Graph {
            nodes: vec![
                node("user:alice", "user"),
                node("esc:1", "esc"),
                node("family:adder", "family"),
                node("fatman:adder@1.0.0", "fatman"),
                node("family:lonely", "family"),
            ],
            edges: vec![
                edge("esc:1", "family:adder", "calls"),
                edge("family:adder", "fatman:adder@1.0.0", "version"),
                edge("user:alice", "fatman:adder@1.0.0", "owns"),
                edge("esc:1", "family:gone", "calls"),
                edge("esc:1", "esc:1", "calls"),
            ],
        }
    }

    #[test]
    fn neighbours_go_both_ways() {
        let g = sample();
        assert_eq!(
            visible_after_click(&g, "family:adder"),
            vec!["esc:1", "family:adder", "fatman:adder@1.0.0"]
        );
        assert_eq!(
            visible_after_click(&g, "fatman:adder@1.0.0"),
            vec!["family:adder", "fatman:adder@1.0.0", "user:alice"]
        );
        assert_eq!(
            visible_after_click(&g, "family:lonely"),
            vec!["family:lonely"]
        );
        assert!(visible_after_click(&g, "nobody").is_empty());
        let near = neighbours(&g);
        assert_eq!(
            near.get("esc:1").map(BTreeSet::len),
            Some(1),
            "no self loop, no dangling edge"
        );
    }

    #[test]
    fn json_and_twin_list() {
        let g = sample();
        let data = graph_json(&g);
        assert_eq!(data["nodes"].as_array().map(Vec::len), Some(5));
        assert_eq!(data["edges"].as_array().map(Vec::len), Some(4));
        assert_eq!(data["neighbours"]["user:alice"][0], "fatman:adder@1.0.0");
        let html = render(&g).into_string();
        assert_eq!(html.matches("data-node-id=").count(), 5);
        assert!(html.contains(r#"<li data-node-id="esc:1" data-kind="esc""#));
        assert!(html.contains(
            "<pre id=\"graph-visible\">esc:1\nfamily:adder\nfamily:lonely\nfatman:adder@1.0.0\nuser:alice</pre>"
        ));
        assert!(html.contains(r#"<div class="graph" id="graph">"#), "{html}");
        assert!(html.contains(r#"id="graph-reset""#));
        assert!(html.contains(r#"id="graph-details""#));
        assert!(html.contains(r#"<script type="application/json" id="graph-data">"#));
        assert!(
            !html.contains("alice</script>"),
            "data cannot close its element"
        );
    }
}
