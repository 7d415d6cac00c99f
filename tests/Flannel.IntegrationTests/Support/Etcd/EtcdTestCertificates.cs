using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Flannel.Testing.Etcd;

/// <summary>
/// A throw-away PKI for a TLS etcd, made with .NET's <see cref="CertificateRequest"/>: a CA, a server
/// certificate for 127.0.0.1/localhost and a client certificate (CN <c>flannel</c>), written as PEM files
/// (certificate + PKCS#8 key) the way etcd, etcdctl and flanneld's <c>--etcd-*file</c> flags expect them.
/// </summary>
public sealed class EtcdTestCertificates
{
    private EtcdTestCertificates(string directory)
    {
        Directory = directory;
    }

    /// <summary>The folder holding the PEM files.</summary>
    public string Directory { get; }

    /// <summary>The CA certificate (PEM) that signed the server and client certificates.</summary>
    public string CaFile => Path.Combine(Directory, "ca.pem");

    /// <summary>The server certificate (PEM), valid for 127.0.0.1 and localhost.</summary>
    public string ServerCertFile => Path.Combine(Directory, "server.pem");

    /// <summary>The server key (PKCS#8 PEM).</summary>
    public string ServerKeyFile => Path.Combine(Directory, "server-key.pem");

    /// <summary>The client certificate (PEM), CN <c>flannel</c>, client-auth usage.</summary>
    public string ClientCertFile => Path.Combine(Directory, "client.pem");

    /// <summary>The client key (PKCS#8 PEM).</summary>
    public string ClientKeyFile => Path.Combine(Directory, "client-key.pem");

    /// <summary>A second, unrelated CA (PEM): a client that trusts only this one must reject the server.</summary>
    public string OtherCaFile => Path.Combine(Directory, "other-ca.pem");

    /// <summary>Creates the CA, server and client certificates in <paramref name="directory"/> (created 0700).</summary>
    public static EtcdTestCertificates Create(string directory)
    {
        System.IO.Directory.CreateDirectory(directory);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        var result = new EtcdTestCertificates(directory);
        DateTimeOffset notBefore = DateTimeOffset.UtcNow.AddMinutes(-5);
        DateTimeOffset notAfter = DateTimeOffset.UtcNow.AddDays(1);

        using ECDsa caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=flannel-test-ca", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        caRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(caRequest.PublicKey, false));
        using X509Certificate2 ca = caRequest.CreateSelfSigned(notBefore, notAfter);
        File.WriteAllText(result.CaFile, ca.ExportCertificatePem());

        var serverNames = new SubjectAlternativeNameBuilder();
        serverNames.AddIpAddress(IPAddress.Loopback);
        serverNames.AddDnsName("localhost");
        WriteLeaf(ca, caKey, "CN=etcd-test-server", serverNames, serverAuth: true, result.ServerCertFile, result.ServerKeyFile, notBefore, notAfter, 1);

        WriteLeaf(ca, caKey, "CN=flannel", null, serverAuth: false, result.ClientCertFile, result.ClientKeyFile, notBefore, notAfter, 2);

        using ECDsa otherKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var otherRequest = new CertificateRequest("CN=unrelated-ca", otherKey, HashAlgorithmName.SHA256);
        otherRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        using X509Certificate2 other = otherRequest.CreateSelfSigned(notBefore, notAfter);
        File.WriteAllText(result.OtherCaFile, other.ExportCertificatePem());
        return result;
    }

    private static void WriteLeaf(
        X509Certificate2 ca,
        ECDsa caKey,
        string subject,
        SubjectAlternativeNameBuilder? names,
        bool serverAuth,
        string certFile,
        string keyFile,
        DateTimeOffset notBefore,
        DateTimeOffset notAfter,
        byte serial)
    {
        using ECDsa key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyAgreement, true));
        var usages = new OidCollection { new Oid("1.3.6.1.5.5.7.3.2") }; // clientAuth: etcd also uses the server cert as a client
        if (serverAuth)
        {
            usages.Add(new Oid("1.3.6.1.5.5.7.3.1")); // serverAuth
        }

        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(usages, false));
        if (names is not null)
        {
            request.CertificateExtensions.Add(names.Build());
        }

        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(ca, true, false));
        using X509Certificate2 issued = request.Create(ca.SubjectName, X509SignatureGenerator.CreateForECDsa(caKey), notBefore, notAfter, [serial, 0x42]);
        File.WriteAllText(certFile, issued.ExportCertificatePem());
        File.WriteAllText(keyFile, key.ExportPkcs8PrivateKeyPem());
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
    }
}
