// Fetches each URL given after the CA file and the protocol with one java.net.http.HttpClient,
// in turn, as a Java service would that keeps one client for its requests, and reports each
// status on stderr. Run by clients/java/fetch.sh for the client profile clients/java.yaml:
//
//   misdirect run --client clients/java.yaml
//
// HTTP/1.1 for h1, HTTP/2 by ALPN otherwise; the CA is the only one trusted.
import java.io.FileInputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.security.KeyStore;
import java.security.cert.CertificateFactory;
import java.time.Duration;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

public class Fetch {
    public static void main(String[] args) throws Exception {
        KeyStore roots = KeyStore.getInstance(KeyStore.getDefaultType());
        roots.load(null, null);
        try (FileInputStream pem = new FileInputStream(args[0])) {
            roots.setCertificateEntry("misdirect", CertificateFactory.getInstance("X.509").generateCertificate(pem));
        }
        TrustManagerFactory trust = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        trust.init(roots);
        SSLContext tls = SSLContext.getInstance("TLS");
        tls.init(null, trust.getTrustManagers(), null);
        HttpClient client = HttpClient.newBuilder()
            .sslContext(tls)
            .version(args[1].equals("h1") ? HttpClient.Version.HTTP_1_1 : HttpClient.Version.HTTP_2)
            .connectTimeout(Duration.ofSeconds(5))
            .build();
        for (int index = 2; index < args.length; index++) {
            String url = args[index];
            try {
                HttpResponse<Void> response = client.send(
                    HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(10)).build(),
                    HttpResponse.BodyHandlers.discarding());
                System.err.println(url + " " + response.statusCode() + " " + response.version());
            } catch (Exception error) {
                System.err.println(url + " " + error);
            }
        }
    }
}
