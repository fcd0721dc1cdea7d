#pragma once

#include <string>
#include <vector>

#include "source/control_plane/resource_snapshot.h"

namespace phoenix::control_plane {

// What `after` leaves pointing at nothing that `before` did not: a listener's
// rds.route_config_name, a route's cluster (or weighted cluster), an SDS secret name, that
// names no resource of that type among those a node gets. One line each, naming the node,
// the resource, its file and what it names.
//
// It exists for deletes: the snapshot's validation treats resources as dynamic (a name may
// arrive later), so it lets a delete take away what others still use.
std::vector<std::string> NewDanglingReferences(const ResourceSnapshot* before,
                                               const ResourceSnapshot& after);

}  // namespace phoenix::control_plane
