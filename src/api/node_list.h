// node.list and GET /v1/nodes: every node this one knows, as JSON (docs/api.md "node.list").
#pragma once

#include <string>

#include "core/node_info.h"

namespace mg {

// One node.list entry (GET /v1/nodes), for this node or a peer. `extra` is appended inside the
// object (e.g. ",\"mesh_addr\":..."), already JSON.
void append_node_json(std::string& out, const NodeInfo& m, const std::string& name, bool alive, bool self,
                      const std::string& extra);

class ApiHost;

// {"nodes":[this node, then every member of the mesh, alive or dead]}.
std::string node_list_json(const ApiHost& host);

}  // namespace mg
