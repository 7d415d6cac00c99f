namespace Flannel.Cni;

/// <summary>
/// Builds the delegate netconf exactly as flannel-io/cni-plugin does (<c>cmdAdd</c>, <c>doCmdAdd</c>,
/// <c>getDelegateIPAM</c>):
/// <list type="number">
/// <item>the delegate may not set <c>name</c> or <c>ipam</c>, and its <c>type</c> must be a string;</item>
/// <item><c>runtimeConfig</c> is copied in; <c>name</c> = the netconf name; <c>type</c> defaults to <c>bridge</c>;
/// <c>ipMasq</c> defaults to !FLANNEL_IPMASQ (masquerade in the bridge only when flanneld does not);
/// <c>mtu</c> defaults to FLANNEL_MTU; a bridge gets <c>isGateway: true</c>; <c>cniVersion</c> is copied;</item>
/// <item><c>ipam</c> = the netconf's ipam (or {}) with <c>type</c> defaulting to <c>host-local</c>, <c>ranges</c>
/// replaced by one range set per family from subnet.env, and <c>routes</c> = its own routes + one per network.</item>
/// </list>
/// </summary>
internal static class DelegateBuilder
{
    public static Dictionary<string, object?> Build(NetConf conf, SubnetEnv env)
    {
        Dictionary<string, object?> @delegate = conf.Delegate is null
            ? new Dictionary<string, object?>(StringComparer.Ordinal)
            : new Dictionary<string, object?>(conf.Delegate, StringComparer.Ordinal);
        if (conf.Delegate is not null)
        {
            if (@delegate.TryGetValue("type", out object? type) && type is not string)
            {
                throw new CniException(CniErrorCode.Internal, "'delegate' dictionary, if present, must have (string) 'type' field");
            }

            if (@delegate.ContainsKey("name"))
            {
                throw new CniException(CniErrorCode.Internal, "'delegate' dictionary must not have 'name' field, it'll be set by flannel");
            }

            if (@delegate.ContainsKey("ipam"))
            {
                throw new CniException(CniErrorCode.Internal, "'delegate' dictionary must not have 'ipam' field, it'll be set by flannel");
            }
        }

        if (conf.RuntimeConfig is not null)
        {
            @delegate["runtimeConfig"] = conf.RuntimeConfig;
        }

        @delegate["name"] = conf.Name;
        @delegate.TryAdd("type", "bridge");
        @delegate.TryAdd("ipMasq", !env.IPMasq!.Value);
        @delegate.TryAdd("mtu", env.Mtu!.Value);
        if ((string)@delegate["type"]! == "bridge")
        {
            @delegate.TryAdd("isGateway", true);
        }

        if (conf.CniVersion.Length > 0)
        {
            @delegate["cniVersion"] = conf.CniVersion;
        }

        @delegate["ipam"] = BuildIpam(conf, env);
        return @delegate;
    }

    private static Dictionary<string, object?> BuildIpam(NetConf conf, SubnetEnv env)
    {
        Dictionary<string, object?> ipam = conf.Ipam is null
            ? new Dictionary<string, object?>(StringComparer.Ordinal)
            : new Dictionary<string, object?>(conf.Ipam, StringComparer.Ordinal);
        ipam.TryAdd("type", "host-local");

        var ranges = new List<object?>();
        foreach (Cidr? subnet in new[] { env.Subnet, env.IPv6Subnet })
        {
            if (subnet is { } s)
            {
                ranges.Add(new List<object?> { new Dictionary<string, object?>(StringComparer.Ordinal) { ["subnet"] = s.ToString() } });
            }
        }

        ipam["ranges"] = ranges.Count == 0 ? null : ranges;

        List<object?> routes = ParseRoutes(conf.Ipam);
        foreach (Cidr network in env.Networks.Concat(env.IPv6Networks))
        {
            routes.Add(new GoStruct { { "dst", network.ToString() } });
        }

        ipam["routes"] = routes;
        return ipam;
    }

    /// <summary>
    /// The netconf's own <c>ipam.routes</c>, decoded into CNI's <c>types.Route</c> and re-encoded the way Go does:
    /// struct field order (dst, gw, mtu, advmss, priority, table, scope), empty fields omitted, unknown keys dropped,
    /// the destination keeping its host bits.
    /// </summary>
    private static List<object?> ParseRoutes(Dictionary<string, object?>? ipam)
    {
        var routes = new List<object?>();
        if (ipam is null || !ipam.TryGetValue("routes", out object? value) || value is null)
        {
            return routes;
        }

        if (value is not List<object?> items)
        {
            throw RouteError($"json: cannot unmarshal {NetConf.GoKind(value)} into Go value of type []types.Route");
        }

        foreach (object? item in items)
        {
            if (item is null)
            {
                routes.Add(new GoStruct { { "dst", "<nil>" } });
                continue;
            }

            if (item is not Dictionary<string, object?> fields)
            {
                throw RouteError($"json: cannot unmarshal {NetConf.GoKind(item)} into Go value of type types.Route");
            }

            var route = new GoStruct();
            string dst = "<nil>";
            string? gw = null;
            long mtu = 0, advmss = 0, priority = 0;
            long? table = null, scope = null;
            foreach ((string key, object? field) in fields)
            {
                if (field is null)
                {
                    continue;
                }

                switch (key.ToUpperInvariant())
                {
                    case "DST":
                        dst = field is string d && Cidr.TryParse(d, out Cidr cidr)
                            ? cidr.ToString()
                            : throw RouteError(field is string bad ? $"invalid CIDR address: {bad}" : $"json: cannot unmarshal {NetConf.GoKind(field)} into Go value of type string");
                        break;
                    case "GW":
                        gw = field is string g && System.Net.IPAddress.TryParse(g, out System.Net.IPAddress? address) && !g.Contains('%', StringComparison.Ordinal)
                            ? address.ToString()
                            : throw RouteError($"ParseAddr({(field as string ?? NetConf.GoKind(field))}): invalid IP address");
                        break;
                    case "MTU": mtu = Integer(key, field); break;
                    case "ADVMSS": advmss = Integer(key, field); break;
                    case "PRIORITY": priority = Integer(key, field); break;
                    case "TABLE": table = Integer(key, field); break;
                    case "SCOPE": scope = Integer(key, field); break;
                }
            }

            route.Add("dst", dst);
            if (gw is not null)
            {
                route.Add("gw", gw);
            }

            if (mtu != 0)
            {
                route.Add("mtu", mtu);
            }

            if (advmss != 0)
            {
                route.Add("advmss", advmss);
            }

            if (priority != 0)
            {
                route.Add("priority", priority);
            }

            if (table is not null)
            {
                route.Add("table", table.Value);
            }

            if (scope is not null)
            {
                route.Add("scope", scope.Value);
            }

            routes.Add(route);
        }

        return routes;
    }

    private static long Integer(string key, object value) =>
        value is double d && d == Math.Floor(d) && Math.Abs(d) < 9.2e18
            ? (long)d
            : throw RouteError($"json: cannot unmarshal {NetConf.GoKind(value)} into Go struct field Route.{key} of type int");

    private static CniException RouteError(string reason) =>
        new(CniErrorCode.Internal, $"failed to assemble Delegate IPAM: failed to read IPAM routes: failed to parse ipam.routes: {reason}");
}
