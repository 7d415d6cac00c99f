using Flannel.Store.Kube.Internal;
using System.Text;

namespace Flannel.Store.Kube.Tests;

public class AnnotationNamesTests
{
    // The cases of flannel's pkg/subnet/kube/annotations_test.go, plus the slash rule.
    [Theory]
    [InlineData("flannel.alpha.coreos.com", "flannel.alpha.coreos.com/backend-type")]
    [InlineData("flannel.alpha.coreos.com/", "flannel.alpha.coreos.com/backend-type")]
    [InlineData("flannel.alpha.coreos.com/prefix", "flannel.alpha.coreos.com/prefix-backend-type")]
    [InlineData("flannel.alpha.coreos.com/prefix-", "flannel.alpha.coreos.com/prefix-backend-type")]
    [InlineData("org.com", "org.com/backend-type")]
    [InlineData("org9.com", "org9.com/backend-type")]
    [InlineData("org.com/9", "org.com/9-backend-type")]
    public void Valid_prefixes_normalise_as_flannel_does(string prefix, string expectedBackendType)
    {
        AnnotationNames names = AnnotationNames.Create(prefix);

        Assert.Equal(expectedBackendType, names.BackendType);
    }

    [Theory]
    [InlineData("org", AnnotationNames.BadFormatError)]
    [InlineData("org/", AnnotationNames.BadFormatError)]
    [InlineData("org/prefix", AnnotationNames.BadFormatError)]
    [InlineData("org.COM", AnnotationNames.BadFormatError)]
    [InlineData("org.com/PREFIX", AnnotationNames.BadFormatError)]
    [InlineData("a.com/b/c", AnnotationNames.TooManySlashesError)]
    [InlineData("", AnnotationNames.BadFormatError)]
    public void Invalid_prefixes_get_flannels_error_text(string prefix, string expectedError)
    {
        Assert.False(AnnotationNames.TryCreate(prefix, out _, out string? error));
        Assert.Equal(expectedError, error);
        ArgumentException thrown = Assert.Throws<ArgumentException>(() => AnnotationNames.Create(prefix));
        Assert.StartsWith(expectedError, thrown.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_annotation_name_of_the_default_prefix_matches_flannels()
    {
        AnnotationNames names = AnnotationNames.Default;

        Assert.Equal("flannel.alpha.coreos.com/kube-subnet-manager", names.KubeSubnetManager);
        Assert.Equal("flannel.alpha.coreos.com/backend-data", names.BackendData);
        Assert.Equal("flannel.alpha.coreos.com/backend-v6-data", names.BackendV6Data);
        Assert.Equal("flannel.alpha.coreos.com/backend-type", names.BackendType);
        Assert.Equal("flannel.alpha.coreos.com/public-ip", names.PublicIP);
        Assert.Equal("flannel.alpha.coreos.com/public-ipv6", names.PublicIPv6);
        Assert.Equal("flannel.alpha.coreos.com/node-public-ip", names.NodePublicIP);
        Assert.Equal("flannel.alpha.coreos.com/node-public-ipv6", names.NodePublicIPv6);
        Assert.Equal("flannel.alpha.coreos.com/public-ip-overwrite", names.PublicIPOverwrite);
        Assert.Equal("flannel.alpha.coreos.com/public-ipv6-overwrite", names.PublicIPv6Overwrite);
    }

    [Theory]
    [InlineData("{\"VNI\":1,\"VtepMAC\":\"12:c6:65:89:b4:e3\"}", "\"{\\\"VNI\\\":1,\\\"VtepMAC\\\":\\\"12:c6:65:89:b4:e3\\\"}\"")]
    [InlineData("a<b>&c", "\"a\\u003cb\\u003e\\u0026c\"")]
    [InlineData("tab\there\nnl\\", "\"tab\\there\\nnl\\\\\"")]
    [InlineData("\u0001\u2028", "\"\\u0001\\u2028\"")]
    public void Strings_are_escaped_as_Go_encoding_json_escapes_them(string value, string expected)
    {
        StringBuilder json = new();
        GoJson.WriteString(json, value);

        Assert.Equal(expected, json.ToString());
    }
}
