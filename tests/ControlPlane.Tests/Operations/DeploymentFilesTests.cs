using System.Text.Json;
using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.Serialization;

namespace ControlPlane.Tests.Operations;

/// <summary>
/// The compose file, Prometheus config, Grafana provisioning and Kubernetes manifests parse and agree with each
/// other and with the host (no docker or cluster here: the wiring that would break silently is checked instead).
/// </summary>
public sealed class DeploymentFilesTests
{
    [Fact]
    public void Compose_runs_three_production_silos_on_postgres_scraped_by_prometheus_and_shown_by_grafana()
    {
        var compose = Load("ops", "compose", "compose.yaml");
        var services = Map(compose["services"]);
        Assert.Superset(new HashSet<string> { "postgres", "silo1", "silo2", "silo3", "prometheus", "grafana" }, services.Keys.Cast<string>().ToHashSet());

        var advertised = new HashSet<string>();
        foreach (var name in new[] { "silo1", "silo2", "silo3" })
        {
            var silo = Map(services[name]);
            var env = Map(silo["environment"]);
            Assert.Equal("Production", env["ControlPlane__Profile"]);
            Assert.StartsWith("Host=postgres;", (string)env["ConnectionStrings__ControlPlane"]);
            Assert.Equal("http://0.0.0.0:8080", env["ASPNETCORE_URLS"]);
            foreach (var key in new[] { "ControlPlane__ClusterId", "ControlPlane__ServiceId", "ControlPlane__SiloPort", "ControlPlane__GatewayPort", "ControlPlane__Audit__HashKey" })
            {
                Assert.True(env.ContainsKey(key), $"{name} lacks {key}");
            }

            var ip = (string)env["ControlPlane__AdvertisedIPAddress"];
            Assert.True(advertised.Add(ip), $"{name} advertises {ip} like another silo");
            Assert.Equal(ip, Map(Map(Map(silo["networks"])["cluster"]))["ipv4_address"]);
            Assert.Contains(name, ((string)env["AllowedHosts"]).Split(';'));

            // Mutual TLS from the certificate the one-shot cluster-tls service makes, mounted read-only.
            Assert.StartsWith("/etc/controlplane/cluster-tls/", (string)env["ControlPlane__Cluster__Tls__CertificatePath"]);
            Assert.StartsWith("/etc/controlplane/cluster-tls/", (string)env["ControlPlane__Cluster__Tls__PasswordFile"]);
            Assert.Contains("cluster-tls:/etc/controlplane/cluster-tls:ro", List(silo["volumes"]).Cast<string>());
            Assert.Equal("service_completed_successfully", Map(Map(silo["depends_on"])["cluster-tls"])["condition"]);
            Assert.False(env.ContainsKey("ControlPlane__Cluster__EnableGateway"));
            Assert.Equal("ops/docker/Dockerfile", Map(silo["build"])["dockerfile"]);
        }

        // Prometheus scrapes exactly the silos, on the port they listen on.
        var prometheus = Load("ops", "compose", "prometheus.yml");
        var targets = List(Map(List(Map(List(prometheus["scrape_configs"])[0])["static_configs"])[0])["targets"]).Cast<string>().ToList();
        Assert.Equal(["silo1:8080", "silo2:8080", "silo3:8080"], targets);
        Assert.Equal("/metrics", Map(List(prometheus["scrape_configs"])[0])["metrics_path"]);

        // Grafana gets the provisioning and the dashboards, and the data source uid is the one the dashboards use.
        var volumes = List(Map(services["grafana"])["volumes"]).Cast<string>().ToList();
        Assert.Contains("../../dashboards/provisioning:/etc/grafana/provisioning:ro", volumes);
        Assert.Contains("../../dashboards:/var/lib/grafana/dashboards:ro", volumes);
        var datasource = Map(List(Load("dashboards", "provisioning", "datasources", "prometheus.yaml")["datasources"])[0]);
        Assert.Equal("http://prometheus:9090", datasource["url"]);
        var provider = Map(List(Load("dashboards", "provisioning", "dashboards", "controlplane.yaml")["providers"])[0]);
        Assert.Equal("/var/lib/grafana/dashboards", Map(provider["options"])["path"]);
        var dashboard = JsonDocument.Parse(File.ReadAllText(RepoFiles.PathOf("dashboards", "controlplane-overview.json"))).RootElement;
        Assert.All(dashboard.GetProperty("panels").EnumerateArray(), p => Assert.Equal(datasource["uid"], p.GetProperty("datasource").GetProperty("uid").GetString()));

        // The image builds the host project that exists.
        var dockerfile = File.ReadAllText(RepoFiles.PathOf("ops", "docker", "Dockerfile"));
        var published = Regex.Match(dockerfile, @"dotnet publish (\S+\.csproj)").Groups[1].Value;
        Assert.True(File.Exists(RepoFiles.PathOf(published.Split('/'))), $"The Dockerfile publishes {published}, which does not exist.");
        Assert.Contains("ENTRYPOINT [\"dotnet\", \"ControlPlane.Host.dll\"]", dockerfile);
    }

    [Fact]
    public void Kubernetes_manifests_give_orleans_its_labels_downward_api_rbac_probes_and_secret()
    {
        var documents = Directory.GetFiles(RepoFiles.PathOf("ops", "k8s"), "*.yaml").SelectMany(LoadAll).ToList();
        Dictionary<object, object> Kind(string kind) => Assert.Single(documents, d => (string)d["kind"] == kind);

        var deployment = Kind("Deployment");
        var spec = Map(deployment["spec"]);
        Assert.Equal("3", spec["replicas"]);
        var template = Map(spec["template"]);
        var labels = Map(Map(template["metadata"])["labels"]);
        var pod = Map(template["spec"]);
        var container = Map(List(pod["containers"])[0]);
        var env = List(container["env"]).Select(Map).ToDictionary(e => (string)e["name"]);

        string Value(string name) => (string)env[name]["value"];
        Assert.Equal(Value("ControlPlane__ServiceId"), labels["orleans/serviceId"]);
        Assert.Equal(Value("ControlPlane__ClusterId"), labels["orleans/clusterId"]);
        Assert.Equal("Production", Value("ControlPlane__Profile"));
        Assert.Equal("true", Value("ControlPlane__Kubernetes"));
        Assert.Equal("metadata.name", FieldRef(env["POD_NAME"]));
        Assert.Equal("metadata.namespace", FieldRef(env["POD_NAMESPACE"]));
        Assert.Equal("status.podIP", FieldRef(env["POD_IP"]));
        Assert.Equal("/readyz", Map(Map(container["readinessProbe"])["httpGet"])["path"]);
        Assert.Equal("/healthz", Map(Map(container["livenessProbe"])["httpGet"])["path"]);

        // The connection string comes from the Secret, under the configuration name the host reads.
        Dictionary<object, object> Secret(string name) => Assert.Single(documents, d => (string)d["kind"] == "Secret" && (string)Map(d["metadata"])["name"] == name);
        var secretName = (string)Map(Map(List(container["envFrom"])[0])["secretRef"])["name"];
        Assert.True(Map(Secret(secretName)["stringData"]).ContainsKey("ConnectionStrings__ControlPlane"));

        // Mutual TLS from a Secret volume; the gateway port is neither opened nor declared.
        var mount = Map(Assert.Single(List(container["volumeMounts"])));
        var volume = Map(Assert.Single(List(pod["volumes"]), v => Map(v)["name"].Equals(mount["name"])));
        var tlsSecret = Secret((string)Map(volume["secret"])["secretName"]);
        Assert.Superset(new HashSet<string> { "cluster-tls.pfx", "cluster-tls.password" }, Map(tlsSecret["data"]).Keys.Cast<string>().ToHashSet());
        Assert.StartsWith((string)mount["mountPath"] + "/", Value("ControlPlane__Cluster__Tls__CertificatePath"));
        Assert.StartsWith((string)mount["mountPath"] + "/", Value("ControlPlane__Cluster__Tls__PasswordFile"));
        Assert.False(env.ContainsKey("ControlPlane__Cluster__EnableGateway"));
        Assert.DoesNotContain(List(container["ports"]).Select(Map), p => p["containerPort"].Equals("30000"));

        // Only silo pods reach the silo port; HTTP is open like any Service's.
        var policy = Kind("NetworkPolicy");
        var policySpec = Map(policy["spec"]);
        Assert.Equal(labels["app.kubernetes.io/name"], Map(Map(policySpec["podSelector"])["matchLabels"])["app.kubernetes.io/name"]);
        var rules = List(policySpec["ingress"]).Select(Map).ToList();
        var siloRule = Assert.Single(rules, r => List(r["ports"]).Select(Map).Any(p => p["port"].Equals("11111")));
        var from = Map(Map(Assert.Single(List(siloRule["from"])))["podSelector"]);
        Assert.Equal(labels["app.kubernetes.io/name"], Map(from["matchLabels"])["app.kubernetes.io/name"]);
        Assert.DoesNotContain(rules, r => List(r["ports"]).Select(Map).Any(p => p["port"].Equals("30000")));

        // RBAC: the pod's service account may get, list, watch and delete pods in its namespace, and nothing else.
        var role = Kind("Role");
        var rule = Map(Assert.Single(List(role["rules"])));
        Assert.Equal(["pods"], List(rule["resources"]).Cast<string>());
        Assert.Equal(["delete", "get", "list", "watch"], List(rule["verbs"]).Cast<string>().Order());
        var binding = Kind("RoleBinding");
        Assert.Equal(Map(role["metadata"])["name"], Map(binding["roleRef"])["name"]);
        Assert.Equal(pod["serviceAccountName"], Map(List(binding["subjects"])[0])["name"]);
        Assert.Equal(pod["serviceAccountName"], Map(Kind("ServiceAccount")["metadata"])["name"]);

        var service = Kind("Service");
        Assert.Equal(labels["app.kubernetes.io/name"], Map(Map(service["spec"])["selector"])["app.kubernetes.io/name"]);
        var ns = (string)Map(Kind("Namespace")["metadata"])["name"];
        Assert.All(documents.Where(d => (string)d["kind"] != "Namespace" && (string)d["kind"] != "Kustomization"),
            d => Assert.Equal(ns, Map(d["metadata"])["namespace"]));
    }

    private static string FieldRef(Dictionary<object, object> env) => (string)Map(Map(env["valueFrom"])["fieldRef"])["fieldPath"];

    private static Dictionary<object, object> Load(params string[] path) => LoadAll(RepoFiles.PathOf(path)).Single();

    /// <summary>Every document of a YAML file, with anchors and merge keys resolved as compose resolves them.</summary>
    private static IEnumerable<Dictionary<object, object>> LoadAll(string file)
    {
        using var reader = new StringReader(File.ReadAllText(file));
        var parser = new MergingParser(new Parser(reader));
        var deserializer = new DeserializerBuilder().Build();
        parser.Consume<YamlDotNet.Core.Events.StreamStart>();
        var documents = new List<Dictionary<object, object>>();
        while (parser.Accept<YamlDotNet.Core.Events.DocumentStart>(out _))
        {
            documents.Add(deserializer.Deserialize<Dictionary<object, object>>(parser));
        }

        return documents;
    }

    private static Dictionary<object, object> Map(object value) => Assert.IsType<Dictionary<object, object>>(value);

    private static List<object> List(object value) => Assert.IsType<List<object>>(value);
}
