// SigV4 against AWS's published examples: the Signature Version 4 test suite
// (service "service", 2015-08-30) and the S3 documentation's examples
// (examplebucket, 2013-05-24). The botocore cross-check on random requests
// is tests/repo/sigv4_botocore_check.py.
#include "repo/sigv4.h"

#include <gtest/gtest.h>

namespace stria::repo {
namespace {

const Credentials kSuite{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};
const Credentials kS3Docs{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""};
const std::string kSuiteDate = "20150830T123600Z";
const std::string kS3Date = "20130524T000000Z";

std::string SignatureOf(const std::string& authorization) {
  return authorization.substr(authorization.find("Signature=") + 10);
}

SignInput Suite(std::string method, std::vector<std::pair<std::string, std::string>> query = {}) {
  SignInput in;
  in.method = std::move(method);
  in.encoded_path = "/";
  in.query = std::move(query);
  in.headers = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", kSuiteDate}};
  in.payload_hash = std::string(kEmptyPayloadHash);
  return in;
}

TEST(SigV4, SuiteGetVanilla) {
  std::string auth = Authorization(kSuite, "us-east-1", "service", kSuiteDate, Suite("GET"));
  EXPECT_EQ(auth,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
            "SignedHeaders=host;x-amz-date, "
            "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

TEST(SigV4, SuitePostVanilla) {
  EXPECT_EQ(SignatureOf(Authorization(kSuite, "us-east-1", "service", kSuiteDate, Suite("POST"))),
            "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
}

TEST(SigV4, SuiteQueryOrderKeyCase) {
  auto in = Suite("GET", {{"Param2", "value2"}, {"Param1", "value1"}});
  EXPECT_EQ(SignatureOf(Authorization(kSuite, "us-east-1", "service", kSuiteDate, in)),
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
}

SignInput S3Example(std::string method, std::string path, std::vector<std::pair<std::string, std::string>> query,
                    std::string payload_hash) {
  SignInput in;
  in.method = std::move(method);
  in.encoded_path = std::move(path);
  in.query = std::move(query);
  in.payload_hash = payload_hash;
  in.headers = {{"Host", "examplebucket.s3.amazonaws.com"},
                {"x-amz-date", kS3Date},
                {"x-amz-content-sha256", payload_hash}};
  return in;
}

TEST(SigV4, S3GetObjectWithRange) {
  auto in = S3Example("GET", "/test.txt", {}, std::string(kEmptyPayloadHash));
  in.headers.push_back({"Range", "bytes=0-9"});
  EXPECT_EQ(Authorization(kS3Docs, "us-east-1", "s3", kS3Date, in),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST(SigV4, S3PutObject) {
  std::string body = "Welcome to Amazon S3.";
  ASSERT_EQ(Sha256Hex(body), "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  ASSERT_EQ(UriEncode("/test$file.text", true), "/test%24file.text");
  auto in = S3Example("PUT", UriEncode("/test$file.text", true), {}, Sha256Hex(body));
  in.headers.push_back({"Date", "Fri, 24 May 2013 00:00:00 GMT"});
  in.headers.push_back({"x-amz-storage-class", "REDUCED_REDUNDANCY"});
  std::string auth = Authorization(kS3Docs, "us-east-1", "s3", kS3Date, in);
  EXPECT_NE(auth.find("SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,"),
            std::string::npos);
  EXPECT_EQ(SignatureOf(auth), "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

TEST(SigV4, S3GetBucketLifecycle) {
  auto in = S3Example("GET", "/", {{"lifecycle", ""}}, std::string(kEmptyPayloadHash));
  EXPECT_EQ(SignatureOf(Authorization(kS3Docs, "us-east-1", "s3", kS3Date, in)),
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

TEST(SigV4, S3ListObjects) {
  auto in = S3Example("GET", "/", {{"max-keys", "2"}, {"prefix", "J"}}, std::string(kEmptyPayloadHash));
  EXPECT_EQ(SignatureOf(Authorization(kS3Docs, "us-east-1", "s3", kS3Date, in)),
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

TEST(SigV4, EncodingAndDates) {
  EXPECT_EQ(UriEncode("a b/ü~x+y", true), "a%20b/%C3%BC~x%2By");
  EXPECT_EQ(UriEncode("a/b", false), "a%2Fb");
  EXPECT_EQ(AmzDate(1369353600), "20130524T000000Z");
  EXPECT_EQ(Sha256Hex(""), kEmptyPayloadHash);
}

// Header values are trimmed and inner blanks collapsed; names are case-blind.
TEST(SigV4, CanonicalHeaders) {
  SignInput in;
  in.method = "GET";
  in.encoded_path = "/k";
  in.headers = {{"X-Amz-Meta-A", "  two   words "}, {"host", "h"}, {"x-amz-meta-a", "again"}};
  in.payload_hash = "UNSIGNED-PAYLOAD";
  std::string names;
  EXPECT_EQ(CanonicalRequest(in, &names), "GET\n/k\n\nhost:h\nx-amz-meta-a:two words,again\n\nhost;x-amz-meta-a\nUNSIGNED-PAYLOAD");
  EXPECT_EQ(names, "host;x-amz-meta-a");
}

}  // namespace
}  // namespace stria::repo
