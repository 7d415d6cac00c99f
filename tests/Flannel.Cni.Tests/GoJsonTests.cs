using System.Text;

namespace Flannel.Cni.Tests;

public sealed class GoJsonTests
{
    [Theory]
    [InlineData(0d, "0")]
    [InlineData(1450d, "1450")]
    [InlineData(1.5d, "1.5")]
    [InlineData(-2.25d, "-2.25")]
    [InlineData(1e20d, "100000000000000000000")]
    [InlineData(1e21d, "1e+21")]
    [InlineData(1.2345e22d, "1.2345e+22")]
    [InlineData(0.000001d, "0.000001")]
    [InlineData(1e-7d, "1e-7")]
    [InlineData(1.5e-10d, "1.5e-10")]
    [InlineData(123456789012345678d, "123456789012345680")]
    [InlineData(0.1d, "0.1")]
    public void Numbers_are_formatted_as_go_float64(double value, string expected) =>
        Assert.Equal(expected, GoJson.FormatFloat(value));

    [Fact]
    public void Strings_are_escaped_as_go_does_with_html_escaping()
    {
        var text = new StringBuilder();
        GoJson.WriteString(text, "a\"b\\c\n\r\t\b\f\u0001<>&\u2028\u2029é😀\ud800");
        Assert.Equal("\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u003c\\u003e\\u0026\\u2028\\u2029é😀\\ufffd\"", text.ToString());
    }

    [Fact]
    public void Map_keys_are_sorted_and_struct_fields_keep_their_order()
    {
        object? parsed = GoJson.Parse("""{"zeta":1,"alpha":{"b":true,"a":null},"list":[3,"x"],"Beta":2}"""u8);
        var map = Assert.IsType<Dictionary<string, object?>>(parsed);
        map["route"] = new GoStruct { { "dst", "10.0.0.0/8" }, { "gw", "10.0.0.1" } };
        Assert.Equal("""{"Beta":2,"alpha":{"a":null,"b":true},"list":[3,"x"],"route":{"dst":"10.0.0.0/8","gw":"10.0.0.1"},"zeta":1}""",
            Encoding.UTF8.GetString(GoJson.Serialize(map)));
    }

    [Fact]
    public void Duplicate_keys_keep_the_last_value_as_go()
    {
        var map = Assert.IsType<Dictionary<string, object?>>(GoJson.Parse("""{"a":1,"a":2}"""u8));
        Assert.Equal(2d, map["a"]);
    }

    [Fact]
    public void Indented_output_uses_go_layout()
    {
        Assert.Equal("{\n    \"a\": [\n        1\n    ],\n    \"b\": {}\n}",
            GoJson.SerializeIndented(new GoStruct { { "a", new List<object?> { 1d } }, { "b", new Dictionary<string, object?>() } }));
    }

    [Theory]
    [InlineData("")]
    [InlineData("{")]
    [InlineData("{} x")]
    [InlineData("[1,]")]
    public void Malformed_json_is_rejected(string json) =>
        Assert.ThrowsAny<System.Text.Json.JsonException>(() => GoJson.Parse(Encoding.UTF8.GetBytes(json)));
}
